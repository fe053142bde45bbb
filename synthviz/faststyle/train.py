"""Training a style network's weights (Johnson et al. 2016): Adam on batches of random content
crops, the loss being :class:`~synthviz.faststyle.loss.PerceptualLoss` (the ``style`` technique's
own objectives). Several styles train one network with conditional instance norm, each batch
element drawn with its own style (Dumoulin et al. 2017).

Checkpoints are written every ``checkpoint_every`` steps (and at the end, and on Ctrl-C), a grid of
samples every ``sample_every`` steps; ``resume=True`` continues from the checkpoint at ``out``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import SynthvizError
from ..io import IMAGE_SUFFIXES, load_image, make_grid, resize, save_image
from ..result import Result
from ..techniques.common import get_image, get_model
from .checkpoint import net_from, read_checkpoint, save_checkpoint
from .loss import PerceptualLoss, check_min_side
from .net import TransformNet


class ContentCrops:
    """Random square crops of the images in a folder (searched recursively), with random flips.

    ``batch(n)`` -> (n, 3, size, size) in [0, 1]. Each crop covers 50–100% of the image's shorter
    side. Images are read once and kept at most ``2 * size`` px on their shorter side.
    """

    def __init__(self, folder: str | os.PathLike, size: int, seed: int = 0):
        folder = Path(folder)
        if not folder.is_dir():
            raise SynthvizError(f"content folder not found: {folder}; pass a folder of photos with --content")
        self.files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SynthvizError(f"no images in {folder}; put PNG or JPEG photos there")
        self.size, self.rng, self.cache = size, random.Random(seed), {}

    def image(self, i: int) -> torch.Tensor:
        if i not in self.cache:
            im = load_image(self.files[i])
            short = min(im.shape[-2:])
            self.cache[i] = resize(im, (round(im.shape[-2] * 2 * self.size / short), round(im.shape[-1] * 2 * self.size / short))) \
                if short > 2 * self.size else im
        return self.cache[i]

    def crop(self, i: int, random_crop: bool = True) -> torch.Tensor:
        im = self.image(i)
        h, w = im.shape[-2:]
        side = round(min(h, w) * (self.rng.uniform(0.5, 1.0) if random_crop else 1.0))
        top = self.rng.randrange(h - side + 1) if random_crop else (h - side) // 2
        left = self.rng.randrange(w - side + 1) if random_crop else (w - side) // 2
        out = resize(im[..., top : top + side, left : left + side], (self.size, self.size))
        return out.flip(-1) if random_crop and self.rng.random() < 0.5 else out

    def batch(self, n: int) -> torch.Tensor:
        return torch.cat([self.crop(self.rng.randrange(len(self.files))) for _ in range(n)])

    def fixed(self, n: int) -> torch.Tensor:
        """The centre crops of the first ``n`` images (the samples shown during training)."""
        return torch.cat([self.crop(i, random_crop=False) for i in range(min(n, len(self.files)))])


class TrainProgress:
    """A rich progress bar showing the loss terms (on stderr)."""

    def __init__(self, steps: int, start: int, enabled: bool):
        self.enabled = enabled
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("style-train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[terms]}"),
                                TimeRemainingColumn(), console=Console(stderr=True))
            self.task = self.bar.add_task("train", total=steps, completed=start, terms="")

    def __enter__(self):
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()

    def update(self, terms: dict[str, float]) -> None:
        if self.enabled:
            self.bar.update(self.task, advance=1, terms="  ".join(f"{k} {v:.3g}" for k, v in terms.items()))


def _sample_grid(net: TransformNet, samples: torch.Tensor, names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample content and its stylisation in every style: (images (n*(S+1), 3, H, W), grid (3, H', W'))."""
    with torch.no_grad():
        x = samples.to(net.out[1].weight.device)
        rows = [torch.stack([x[i].cpu(), *[net(x[i : i + 1], k)[0].cpu() for k in range(net.styles)]]) for i in range(len(x))]
    images = torch.cat(rows)
    labels = [lab for _ in rows for lab in ["content", *names]]
    return images, make_grid(images, labels, ncol=net.styles + 1)


def train_style_net(model="efficientnet_lite0", styles: Sequence[torch.Tensor | str | os.PathLike] = (),
                    content: str | os.PathLike = "", *, out: str | os.PathLike = "style-net.pt", steps: int = 400,
                    size: int = 128, batch_size: int = 4, lr: float = 2e-3, content_weight: float = 1.0,
                    style_weight: float = 3.0, tv_weight: float = 1.0, style_size: int | None = None,
                    channels: Sequence[int] = (16, 32, 48), res_blocks: int = 3, stat: str = "moments",
                    content_layer: str | None = None, style_layers: str | Sequence[str] | None = None,
                    layer_weights: str | Sequence[float] | None = None, names: Sequence[str] | None = None,
                    checkpoint_every: int = 100, sample_every: int = 100, resume: bool = False,
                    overwrite: bool = False, weights: str = "default", seed: int = 0, device: str | None = None,
                    progress: bool = False) -> Result:
    """Train one network for all ``styles`` (paths or (1, 3, H, W) tensors) on crops of ``content``'s images.

    ``stat`` defaults to ``moments`` (mean and covariance): with ``gram`` the small network learns to
    paint saturated blobs (a cheap way to raise uncentred Gram entries, stuck once the sigmoid output
    saturates); with moments it does not.

    Returns a :class:`Result` whose images are the sample grid's tiles (figure: the grid) and whose
    ``info`` has ``seconds``, ``steps``, the mean loss terms of the first and last 10% of the steps
    (``first``, ``last``), ``styles`` and ``path`` (the checkpoint).
    """
    for name, value in (("steps", steps), ("size", size), ("batch_size", batch_size), ("lr", lr)):
        if value <= 0:
            raise SynthvizError(f"{name} must be positive, not {value}")
    if not styles:
        raise SynthvizError("no style image given; pass at least one STYLE image")
    out = Path(out)
    if out.exists() and not (resume or overwrite):
        raise SynthvizError(f"{out} exists; pass --resume to continue training it or --overwrite to start again")
    m = get_model(model, weights, device)
    dev = m.device
    style_size = style_size or size
    style_imgs = [get_image(s, what=f"style image {i + 1}") for i, s in enumerate(styles)]
    for i, s in enumerate(style_imgs):
        check_min_side(s, f"style image {i + 1}")
    style_imgs = [resize(s, style_size) for s in style_imgs]  # statistics at the scale the network paints at
    names = list(names or [Path(s).stem if isinstance(s, (str, os.PathLike)) else f"style {i}" for i, s in enumerate(styles)])
    crops = ContentCrops(content, size, seed)
    config = {"size": size, "batch_size": batch_size, "lr": lr, "content_weight": content_weight,
              "style_weight": style_weight, "tv_weight": tv_weight, "style_size": style_size, "stat": stat}

    torch.manual_seed(seed)
    start = 0
    if resume and out.exists():
        data = read_checkpoint(out)
        if list(data["styles"]) != names:
            raise SynthvizError(f"{out} was trained on styles {data['styles']}, not {names}; pass the same styles to resume")
        net = net_from(data).to(dev)
        start = int(data["step"])
    else:
        net = TransformNet(len(style_imgs), channels, res_blocks).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    if start:
        opt.load_state_dict(data["optimizer"])
    crops.rng.seed(seed + start)
    samples = crops.fixed(3)
    sample_dir = out.with_name(out.stem + "-samples")
    done, record, t0 = start, [], time.perf_counter()

    def checkpoint():
        save_checkpoint(out, net, names, step=done, optimizer=opt, config=config)

    with m.evaluating():
        loss = PerceptualLoss(m, style_imgs, content_layer_name=content_layer, style_layer_names=style_layers,
                              weights=layer_weights, stat=stat)
        net.train()
        with TrainProgress(steps, start, progress) as bar:
            try:
                for step in range(start, steps):
                    x = crops.batch(batch_size).to(dev)
                    ids = (torch.arange(batch_size) + step * batch_size) % net.styles
                    y = net(x, torch.nn.functional.one_hot(ids, net.styles).float())
                    terms = loss.terms(y, x, ids)
                    total = (content_weight * terms["content"] + style_weight * terms["style"]
                             + tv_weight * terms["tv"]).mean()
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    opt.step()
                    done = step + 1
                    means = {k: float(v.detach().mean()) for k, v in terms.items()}
                    record.append(means)
                    bar.update(means)
                    if checkpoint_every and done % checkpoint_every == 0 and done < steps:
                        checkpoint()
                    if sample_every and done % sample_every == 0:
                        save_image(_sample_grid(net.eval(), samples, names)[1], sample_dir / f"step-{done:06d}.png", overwrite=True)
                        net.train()
            finally:  # Ctrl-C or an error: keep what was learnt
                net.eval()
                if done > start:
                    checkpoint()
    seconds = time.perf_counter() - t0
    images, grid = _sample_grid(net, samples, names)
    k = max(1, len(record) // 10)
    avg = lambda part: {t: sum(r[t] for r in part) / len(part) for t in part[0]} if part else {}  # noqa: E731
    info = {"path": str(out), "styles": names, "steps": done, "steps_this_run": done - start, "seconds": seconds,
            "seconds_per_step": seconds / max(1, done - start), "first": avg(record[:k]), "last": avg(record[-k:]),
            "device": str(dev), "model": m.name, "content_layer": loss.content_layer, "style_layers": loss.style_layers,
            **config,
            "report": f"trained {len(names)} style(s) for {done - start} steps at {size} px in {seconds:.0f} s on {dev}"}
    return Result(images=images, figure=grid, info=info, labels=[], steps=done, objective="perceptual loss",
                  technique="style_train")
