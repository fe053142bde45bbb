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
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checks import non_negative, positive
from ..errors import BadValue, SynthvizError
from ..io import as_image, deferred_interrupt, list_images, make_grid, read_images, resize, save_image, skipped_note
from ..models import load_model
from ..progress import progress as progress_bar
from ..result import Result
from .checkpoint import net_from, read_checkpoint, save_checkpoint
from .loss import PerceptualLoss, check_min_side, check_stat
from .net import TransformNet


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the train state was saved: ``path`` the checkpoint holding it
    (None when no step finished in this run, so nothing was written), ``step`` the steps done of ``steps``."""

    def __init__(self, path: Path | None, step: int, steps: int):
        super().__init__(f"interrupted at step {step} of {steps}")
        self.path, self.step, self.steps = path, step, steps


class ContentCrops:
    """Random square crops of the images in a folder (searched recursively), with random flips.

    ``batch(n)`` -> (n, 3, size, size) in [0, 1]. Each crop covers 50–100% of the image's shorter
    side. Images are read once and kept at most ``2 * size`` px on their shorter side. A file that
    cannot be read is dropped when first met, listed in ``skipped`` and reported by a warning.
    """

    def __init__(self, folder: str | os.PathLike, size: int, seed: int = 0):
        folder = Path(folder)
        if not folder.is_dir():
            raise SynthvizError(f"content folder not found: {folder}; pass a folder of photos with --content")
        self.folder, self.files = folder, list_images(folder, recursive=True)
        self.skipped: list[tuple[Path, str]] = []
        self.size, self.rng, self.cache = size, random.Random(seed), {}

    def image(self, i: int) -> torch.Tensor | None:
        """File ``i`` as (1, 3, H, W); None when it cannot be read (it is then dropped from ``files``)."""
        path = self.files[i]
        if path not in self.cache:
            loaded = list(read_images([path], skipped=self.skipped))
            if not loaded:
                del self.files[i]
                warnings.warn(f"{path} skipped: {self.skipped[-1][1]}", stacklevel=3)
                if not self.files:
                    raise SynthvizError(f"no image in {self.folder} could be read: {skipped_note(self.skipped)}; "
                                        "use PNG or JPEG photos")
                return None
            im = loaded[0][1]
            short = min(im.shape[-2:])
            self.cache[path] = resize(im, (round(im.shape[-2] * 2 * self.size / short), round(im.shape[-1] * 2 * self.size / short))) \
                if short > 2 * self.size else im
        return self.cache[path]

    def crop(self, i: int, random_crop: bool = True) -> torch.Tensor | None:
        """A crop (1, 3, size, size) of file ``i``; None when it cannot be read."""
        im = self.image(i)
        if im is None:
            return None
        h, w = im.shape[-2:]
        side = round(min(h, w) * (self.rng.uniform(0.5, 1.0) if random_crop else 1.0))
        top = self.rng.randrange(h - side + 1) if random_crop else (h - side) // 2
        left = self.rng.randrange(w - side + 1) if random_crop else (w - side) // 2
        out = resize(im[..., top : top + side, left : left + side], (self.size, self.size))
        return out.flip(-1) if random_crop and self.rng.random() < 0.5 else out

    def batch(self, n: int) -> torch.Tensor:
        crops = []
        while len(crops) < n:
            crop = self.crop(self.rng.randrange(len(self.files)))
            if crop is not None:
                crops.append(crop)
        return torch.cat(crops)

    def fixed(self, n: int) -> torch.Tensor:
        """The centre crops of the first ``n`` readable images (the samples shown during training)."""
        crops, i = [], 0
        while len(crops) < n and i < len(self.files):
            crop = self.crop(i, random_crop=False)
            if crop is not None:  # else file i was dropped and the next one took its place
                crops.append(crop)
                i += 1
        return torch.cat(crops)


def _terms(means: dict[str, float]) -> str:
    """The loss terms as the progress bar shows them: ``content 0.5  style 1.2  tv 0.01``."""
    return "  ".join(f"{k} {v:.3g}" for k, v in means.items())


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
                    size: int = 128, batch_size: int = 4, lr: float = 2e-3, content_weight: float = 4.0,
                    style_weight: float = 3.0, tv_weight: float = 1.0, style_size: int | None = None,
                    channels: Sequence[int] = (16, 32, 48), res_blocks: int = 3, stat: str = "moments",
                    content_layer: str | None = None, style_layers: str | Sequence[str] | None = None,
                    layer_weights: str | Sequence[float] | None = None, names: Sequence[str] | None = None,
                    checkpoint_every: int = 100, sample_every: int = 100, resume: bool = False,
                    overwrite: bool = False, weights: str = "default", seed: int = 0, device: str | None = None,
                    progress: bool = False) -> Result:
    """Train one network for all ``styles`` (paths or (1, 3, H, W) tensors) on crops of ``content``'s images.

    ``content_weight`` defaults to 4 (1 before 0.5), chosen by the style judge: the most style at which
    the output keeps the optimised image's content at the same style gap (within 0.05); lower it
    for more style, at a content cost measured in docs/style.md.

    ``stat`` defaults to ``moments`` (mean and covariance): with ``gram`` the small network learns to
    paint saturated blobs (a cheap way to raise uncentred Gram entries, stuck once the sigmoid output
    saturates); with moments it does not.

    Returns a :class:`Result` whose images are the sample grid's tiles (figure: the grid) and whose
    ``info`` has ``seconds``, ``steps``, the mean loss terms of the first and last 10% of the steps
    (``first``, ``last``), ``styles`` and ``path`` (the checkpoint).
    """
    _check_arguments(steps, size, batch_size, lr, styles, channels, res_blocks, stat,
                     dict(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                          checkpoint_every=checkpoint_every, sample_every=sample_every), style_size)
    out = Path(out)
    if out.exists() and not (resume or overwrite):
        raise SynthvizError(f"{out} exists; pass --resume to continue training it or --overwrite to start again")
    if resume and not out.is_file():  # never start from scratch when asked to continue
        raise BadValue(f"--resume: no checkpoint to continue at {out}; pass the checkpoint's path with --out, "
                       "or leave out --resume to start a new network there")
    m = load_model(model, weights, device)
    dev = m.device
    style_size = style_size or size
    style_imgs = _style_images(styles, style_size)
    names = list(names or [Path(s).stem if isinstance(s, (str, os.PathLike)) else f"style {i}" for i, s in enumerate(styles)])
    crops = ContentCrops(content, size, seed)
    config = {"size": size, "batch_size": batch_size, "lr": lr, "content_weight": content_weight,
              "style_weight": style_weight, "tv_weight": tv_weight, "style_size": style_size, "stat": stat}

    torch.manual_seed(seed)
    net, opt, start = _network(out, resume, names, len(style_imgs), channels, res_blocks, lr, dev)
    crops.rng.seed(seed + start)
    samples = crops.fixed(3)
    t0 = time.perf_counter()
    with m.evaluating():
        loss = PerceptualLoss(m, style_imgs, content_layer_name=content_layer, style_layer_names=style_layers,
                              weights=layer_weights, stat=stat)

        def terms(step: int) -> dict[str, torch.Tensor]:
            """A batch of crops (B, 3, size, size), each element with its own style -> loss terms (B,)."""
            x = crops.batch(batch_size).to(dev)
            ids = (torch.arange(batch_size) + step * batch_size) % net.styles
            y = net(x, torch.nn.functional.one_hot(ids, net.styles).float())
            return loss.terms(y, x, ids)

        training = Trainer(net, opt, terms, {"content": content_weight, "style": style_weight, "tv": tv_weight}, out,
                           save=lambda t: save_checkpoint(t.out, t.net, names, step=t.done, optimizer=t.opt, config=config),
                           samples=lambda n: _sample_grid(n, samples, names)[1], start=start)
        training.fit(steps, progress, "style-train", checkpoint_every, sample_every)
    return _trained(training, m.name, loss, names, config, samples, time.perf_counter() - t0)


def _check_arguments(steps: int, size: int, batch_size: int, lr: float, styles: Sequence, channels: Sequence[int],
                     res_blocks: int, stat: str, counts: dict[str, float], style_size: int | None) -> None:
    """Every option checked before any work: one line naming the option (``counts``: the weights
    and the checkpoint/sample periods, each 0 or more)."""
    for name, value in (("steps", steps), ("size", size), ("batch_size", batch_size)):
        positive(name, value, integer=True)
    positive("lr", lr)
    positive("style_size", style_size, integer=True)
    non_negative("res_blocks", res_blocks, integer=True)
    for name, value in counts.items():
        non_negative(name, value, integer=name.endswith("_every"))
    widths = list(channels)
    if len(widths) != 3 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in widths):
        raise BadValue(f"channels must be three positive widths like 16,32,48, not {','.join(map(str, widths))}")
    check_stat(stat)
    if not styles:
        raise SynthvizError("no style image given; pass at least one STYLE image")


def _style_images(styles: Sequence[torch.Tensor | str | os.PathLike], style_size: int) -> list[torch.Tensor]:
    """The style images (1, 3, H, W), each checked large enough, at ``style_size`` (longer side):
    their statistics are taken at the scale the network paints at."""
    style_imgs = [as_image(s, what=f"style image {i + 1}") for i, s in enumerate(styles)]
    for i, s in enumerate(style_imgs):
        check_min_side(s, f"style image {i + 1}")
    return [resize(s, style_size) for s in style_imgs]


def _network(out: Path, resume: bool, names: list[str], n_styles: int, channels: Sequence[int], res_blocks: int,
             lr: float, device: torch.device) -> tuple[TransformNet, torch.optim.Optimizer, int]:
    """(network, its Adam optimizer, the step it starts at): read back from the checkpoint at
    ``out`` when resuming, else new."""
    start = 0
    if resume:
        data = read_checkpoint(out)
        net = net_from(data, out).to(device)
        if list(data["styles"]) != names:
            raise SynthvizError(f"{out} was trained on styles {data['styles']}, not {names}; pass the same styles to resume")
        start = int(data.get("step", 0))
    else:
        net = TransformNet(n_styles, channels, res_blocks).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    if start:
        opt.load_state_dict(data["optimizer"])
    return net, opt, start


@dataclass
class Trainer:
    """The one training loop of the fast-style networks (the style network, the AdaIN decoder):
    Adam on ``terms(step)`` (loss terms, each (B,)) weighted by ``weights`` and averaged over the
    batch. ``done`` counts the steps taken (from ``start``), ``record`` holds each step's mean
    terms; ``save(trainer)`` writes the checkpoint at ``out`` as it goes and when it stops, and
    ``samples(net)`` a sample grid (3, H, W) to OUT-samples/."""

    net: torch.nn.Module
    opt: torch.optim.Optimizer
    terms: Callable[[int], dict[str, torch.Tensor]]
    weights: dict[str, float]
    out: Path
    save: Callable[["Trainer"], object]
    samples: Callable[[torch.nn.Module], torch.Tensor]
    start: int = 0
    done: int = 0
    record: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self):
        self.done = self.start

    def fit(self, steps: int, progress: bool, label: str, checkpoint_every: int, sample_every: int) -> None:
        """Train up to step ``steps`` in train mode behind the one progress bar."""
        self.net.train()
        with progress_bar(steps, label, completed=self.start, status="", enabled=progress) as bar:
            self.run(steps, bar, checkpoint_every, sample_every)

    def run(self, steps: int, bar, checkpoint_every: int, sample_every: int) -> None:
        """Train up to step ``steps``, checkpointing every ``checkpoint_every`` steps and saving a sample
        grid every ``sample_every``; on Ctrl-C or an error the checkpoint keeps what was learnt (Ctrl-C:
        :class:`TrainingInterrupted` says where)."""
        sample_dir = self.out.with_name(self.out.stem + "-samples")
        try:
            for step in range(self.start, steps):
                bar.advance(status=_terms(self.step(step)))
                if checkpoint_every and self.done % checkpoint_every == 0 and self.done < steps:
                    self.checkpoint()
                if sample_every and self.done % sample_every == 0:
                    save_image(self.samples(self.net.eval()), sample_dir / f"step-{self.done:06d}.png", overwrite=True)
                    self.net.train()
        except KeyboardInterrupt:
            raise TrainingInterrupted(self.keep(), self.done, steps) from None
        except BaseException:
            self.keep()
            raise
        self.keep()

    def keep(self) -> Path | None:
        """Save the train state (a second Ctrl-C waits for the write); the path, or None when no step
        finished in this run."""
        self.net.eval()
        if self.done == self.start:
            return None
        with deferred_interrupt():
            self.checkpoint()
        return self.out

    def step(self, step: int) -> dict[str, float]:
        """One Adam step on ``terms(step)``."""
        terms = self.terms(step)
        total = sum(self.weights[k] * v for k, v in terms.items() if k in self.weights).mean()
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        with deferred_interrupt():  # the weights and the step count change together (a Ctrl-C waits)
            self.opt.step()
            self.done = step + 1
        means = {k: float(v.detach().mean()) for k, v in terms.items()}
        self.record.append(means)
        return means

    def checkpoint(self) -> None:
        self.save(self)

    def summary(self, seconds: float) -> dict:
        """Steps, timing and the mean loss terms of the first and last 10% of the steps (``first``, ``last``)."""
        k = max(1, len(self.record) // 10)
        avg = lambda part: {n: sum(r[n] for r in part) / len(part) for n in part[0]} if part else {}  # noqa: E731
        ran = self.done - self.start
        return {"path": str(self.out), "steps": self.done, "steps_this_run": ran, "seconds": seconds,
                "seconds_per_step": seconds / max(1, ran), "first": avg(self.record[:k]), "last": avg(self.record[-k:])}


def _trained(training: Trainer, model_name: str, loss: PerceptualLoss, names: list[str], config: dict,
             samples: torch.Tensor, seconds: float) -> Result:
    """The result: the sample grid's tiles and figure, and ``info`` with the mean loss terms of the
    first and last 10% of the steps, the timing and the training's settings."""
    t, size = training, config["size"]
    dev = next(t.net.parameters()).device
    images, grid = _sample_grid(t.net, samples, names)
    info = {**t.summary(seconds), "styles": names, "device": str(dev), "model": model_name,
            "content_layer": loss.content_layer, "style_layers": loss.style_layers, **config,
            "report": f"trained {len(names)} style(s) for {t.done - t.start} steps at {size} px in {seconds:.0f} s on {dev}"}
    return Result(images=images, figure=grid, info=info, labels=[], steps=t.done, objective="perceptual loss",
                  technique="style_train")


_Training = Trainer  # the name the loop had before it took any network and loss
