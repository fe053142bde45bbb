"""A benchmark with known answers: images whose class is decided by one known region, a tiny CNN
trained on them in seconds on a CPU, and the same network trained on shuffled labels.

Each image (``size`` px, default 32) is low-contrast noise on a random colour, with two square
patches at random, non-overlapping places: the *evidence* patch holds stripes whose orientation is
the class (``horizontal`` / ``vertical``), the *distractor* patch a checkerboard that carries no
information. The evidence patch is the ground-truth mask, so a method's pointing game accuracy
against it is known to be measurable. The shuffled-label twin (Adebayo et al.'s data randomization
test) has the same architecture and initialisation but learned nothing about the evidence: a
method whose maps look the same on both explains the image, not the model.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..models import Model

CLASSES = ["horizontal stripes", "vertical stripes"]


def make_dataset(n: int = 1024, size: int = 32, patch: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` images: ((n, 3, size, size) in [0, 1], labels (n,), evidence masks (n, 1, size, size))."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    colour = 0.3 + 0.4 * torch.rand(n, 3, 1, 1, generator=gen)
    images = (colour + 0.08 * torch.randn(n, 3, size, size, generator=gen)).clamp(0, 1)
    masks = torch.zeros(n, 1, size, size)
    r = torch.arange(patch)
    stripes = ((r[:, None] // 2) % 2).float().expand(patch, patch)  # rows alternate every 2 px
    checker = (((r[:, None] // 2) + (r[None, :] // 2)) % 2).float()
    cells = size // patch
    for i in range(n):
        a, b = torch.randperm(cells * cells, generator=gen)[:2].tolist()
        ya, xa = (a // cells) * patch + (size - cells * patch) // 2, (a % cells) * patch + (size - cells * patch) // 2
        yb, xb = (b // cells) * patch + (size - cells * patch) // 2, (b % cells) * patch + (size - cells * patch) // 2
        ink = torch.rand(3, 1, 1, generator=gen)
        pattern = stripes if labels[i] == 0 else stripes.T
        images[i, :, ya:ya + patch, xa:xa + patch] = pattern * ink + (1 - pattern) * (1 - ink)
        images[i, :, yb:yb + patch, xb:xb + patch] = checker * ink + (1 - checker) * (1 - ink)
        masks[i, :, ya:ya + patch, xa:xa + patch] = 1
    return images, labels, masks


def tiny_cnn(seed: int = 0) -> nn.Module:
    """Three 3×3 conv + batch norm + ReLU stages (16, 32, 32 channels, one stride 2), global pooling, a linear head."""
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 16, 3, padding=1, bias=False)), ("bn1", nn.BatchNorm2d(16)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)), ("bn2", nn.BatchNorm2d(32)), ("relu2", nn.ReLU()),
        ("conv3", nn.Conv2d(32, 32, 3, padding=1, bias=False)), ("bn3", nn.BatchNorm2d(32)), ("relu3", nn.ReLU()),
        ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(32, len(CLASSES)))]))


def train(images: torch.Tensor, labels: torch.Tensor, epochs: int = 4, seed: int = 0, lr: float = 3e-3,
          batch: int = 64, name: str = "synthetic") -> Model:
    """Train :func:`tiny_cnn` (Adam, cross-entropy) and wrap it as a :class:`~synthviz.models.Model`
    (mean 0.5, std 0.25; Grad-CAM layer ``relu3``)."""
    net = tiny_cnn(seed)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    x = (images - 0.5) / 0.25
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            loss = nn.functional.cross_entropy(net(x[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return Model(net, mean, std, CLASSES, name=name, min_size=16,
                 layers={"gradcam": "relu3", "mid": "relu2", "early": "relu1"})


@torch.no_grad()
def accuracy(model: Model, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((model(images).argmax(1) == labels).float().mean())


def benchmark(n_train: int = 2048, epochs: int = 4, seed: int = 0) -> dict:
    """The trained model, its shuffled-label twin and a held-out test set:
    ``{"model", "shuffled", "images", "labels", "masks", "accuracy", "shuffled_accuracy"}``."""
    x, y, _ = make_dataset(n_train, seed=seed)
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + 1))]
    model = train(x, y, epochs, seed, name="synthetic")
    twin = train(x, shuffled, epochs, seed, name="synthetic-shuffled")
    tx, ty, tm = make_dataset(256, seed=seed + 100)
    return {"model": model, "shuffled": twin, "images": tx, "labels": ty, "masks": tm,
            "accuracy": accuracy(model, tx, ty), "shuffled_accuracy": accuracy(twin, tx, ty)}
