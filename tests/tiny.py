"""Tiny random-weight models for the transformer and custom-model tests (fast on one CPU thread)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """A small CNN with named stages, for mechanics tests (fast, deterministic)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.relu3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        x = self.relu3(self.conv3(x))
        return self.fc(self.pool(x).flatten(1))


def make_tiny_model(seed: int = 0):
    """:class:`TinyNet` as a :class:`~synthviz.models.Model` with 10 named classes (the ``tiny_model`` fixture)."""
    from synthviz.models import Model

    torch.manual_seed(seed)
    return Model(TinyNet(), classes=[f"class {i}" for i in range(10)], name="tiny", min_size=8)


def tiny_vit(num_classes: int = 10, layers: int = 2, seed: int = 0) -> nn.Module:
    """torchvision's ViT at 32 px, 8 px patches: tokens (B, 1 + 4·4, 16). Its head is zero-initialised
    by torchvision, so it is re-initialised here (a zero head gives zero gradients everywhere)."""
    from torchvision.models import VisionTransformer

    torch.manual_seed(seed)
    net = VisionTransformer(image_size=32, patch_size=8, num_layers=layers, num_heads=2, hidden_dim=16,
                            mlp_dim=32, num_classes=num_classes)
    nn.init.normal_(net.heads.head.weight, std=0.5)
    nn.init.normal_(net.heads.head.bias, std=0.1)
    return net.eval()


class TinyRegressor(nn.Module):
    """A tiny CNN ending in one output (B, 1): a regression model with no class names."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                      nn.ReLU())
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


class TinyEmbedder(nn.Module):
    """A tiny CNN producing a 16-d embedding (B, 16)."""

    def __init__(self, seed: int = 1):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2, bias=False), nn.Tanh(),
                                      nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.Tanh())
        self.proj = nn.Linear(16, 16, bias=False)

    def forward(self, x):
        return self.proj(self.features(x).mean((2, 3)))


class TinySegmenter(nn.Module):
    """A tiny fully convolutional network: per-pixel scores of 3 classes (B, 3, H, W)."""

    def __init__(self, seed: int = 2):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x):
        return self.body(x)


def tiny_swin(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """torchvision's Swin at 32 px: 4 px patches, windows of 4, two stages (features.1: (B, 8, 8, 8),
    features.3: (B, 4, 4, 16), both (B, H, W, C))."""
    from torchvision.models import SwinTransformer

    torch.manual_seed(seed)
    net = SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[1, 1], num_heads=[2, 2], window_size=[4, 4],
                          stochastic_depth_prob=0.0, num_classes=num_classes)
    nn.init.normal_(net.head.weight, std=0.5)
    return net.eval()


def tiny_maxvit(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """torchvision's MaxViT fixed at 32 px: stem to 16 px, blocks.0 (B, 8, 8, 8), blocks.1 (B, 16, 4, 4)."""
    from torchvision.models import MaxVit

    torch.manual_seed(seed)
    return MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[8, 16],
                  block_layers=[1, 1], head_dim=4, stochastic_depth_prob=0.0, num_classes=num_classes).eval()


def raw_output(model, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The raw output of ``layer`` ((B, N, C) tokens for a transformer block) through a forward hook."""
    out = {}
    handle = model.net.get_submodule(layer).register_forward_hook(lambda m, a, o: out.setdefault("t", o))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return out["t"]
