"""Activation samples of an indexing pass (``synthviz index ... --samples-per-image N``): per image
and indexed layer, the activation vector at ``N`` random positions and each one's attribution to
the image's predicted class, the material of an activation atlas (:mod:`synthviz.dataset.atlas`).

The positions of image ``i`` are drawn by a generator seeded with ``(seed, i)``, so they do not
depend on the batch, the order workers finish in or a resume. The attribution of a sample is the
first-order (gradient × activation) contribution of that position's vector to the predicted
logit: ``Σ_c A[c, y, x] · ∂logit/∂A[c, y, x]``, from one full forward and backward per layer
(a :class:`~synthviz.layers.Tap` whose captured output is the leaf of the backward).

Files in the run folder, memory-mapped like the features::

    samples/<layer>.npy        (N, S, C) float32: the vectors (NaN rows: skipped images)
    samples/<layer>.pos.npy    (N, S) int64: the position of each (y * W + x; token index; -1 for vectors)
    samples/<layer>.attr.npy   (N, S) float32: its attribution to the predicted class
    samples/predicted.npy      (N,) int64: the predicted class of each image (-1: skipped)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import BadValue
from ..layers import LOGITS, Tap
from ..models import Model
from ..targets import main_output

SEED = 0x5A17


def sample_positions(index: int, count: int, positions: int, first: int = 0) -> np.ndarray:
    """The ``count`` positions of image ``index`` among ``first .. positions - 1`` (without
    replacement while there are enough, seeded by the image index): (count,) int64."""
    rng = np.random.default_rng([SEED, int(index)])
    span = positions - first
    if span <= 0:
        return np.full(count, -1, dtype=np.int64)
    picked = rng.choice(span, count, replace=count > span)
    return (picked + first).astype(np.int64)


def _flat(act: torch.Tensor, model: Model, name: str) -> tuple[torch.Tensor, int]:
    """A layer's raw output as (B, P, C) positions × channels, and the first position to sample
    (past a token layer's class tokens)."""
    if act.dim() == 4:
        if model.channels_last is not None and model.channels_last(name):
            act = act.permute(0, 3, 1, 2)
        return act.flatten(2).transpose(1, 2), 0
    if act.dim() == 3:
        return act, int(model.prefix_tokens or 0) if act.shape[1] > int(model.prefix_tokens or 0) else 0
    if act.dim() == 2:
        return act[:, None], 0
    raise BadValue(f"cannot sample a layer whose output has shape {tuple(act.shape)}; pick a conv or linear layer")


def sample_batch(model: Model, images: torch.Tensor, indices: Sequence[int], names: Sequence[str],
                 count: int) -> dict:
    """The samples of a batch: images (B, 3, H, W) in [0, 1], their indices in the run.

    Returns ``{"predicted": (B,) int64, layer: (vectors (B, S, C) float32, positions (B, S) int64,
    attributions (B, S) float32)}``, all on the CPU."""
    x = images.to(model.device)
    out: dict = {}
    for name in names:
        with model.evaluating(), torch.enable_grad(), Tap(model, [name, LOGITS], grad="leaf", spatial=False) as tap:
            acts = tap(x)
            logits = main_output(acts[LOGITS])
            if logits is None or logits.dim() != 2:
                raise BadValue(f"{model.name}'s output is not class scores, so samples have no class to be "
                               "attributed to; index without --samples-per-image")
            predicted = logits.detach().argmax(1)
            grad, = torch.autograd.grad(logits.gather(1, predicted[:, None]).sum(), acts[name])
        flat, first = _flat(acts[name].detach(), model, name)
        contrib = _flat(grad * acts[name].detach(), model, name)[0].sum(-1)  # (B, P)
        pos = torch.from_numpy(np.stack([sample_positions(i, count, flat.shape[1], first) for i in indices]))
        gather = pos.clamp_min(0).to(flat.device)
        vectors = flat.gather(1, gather[..., None].expand(-1, -1, flat.shape[2]))
        attributions = contrib.gather(1, gather)
        if flat.shape[1] == 1 and first == 0 and acts[name].dim() == 2:
            pos = torch.full_like(pos, -1)
        out[name] = (vectors.float().cpu(), pos, attributions.float().cpu())
        out["predicted"] = predicted.cpu()
    return out


def _open(out: Path, key: str, shape: tuple, dtype, new: bool) -> np.memmap:
    """``out/samples/<key>.npy``: created (``new``), else opened and checked to be whole."""
    from .state import open_array

    return open_array(out, f"samples/{key}.npy", shape, new, dtype)


class SampleFiles:
    """The sample memmaps of a pass: ``predicted`` (N,) and per layer (vectors (N, S, C), positions
    (N, S), attributions (N, S))."""

    def __init__(self, out: Path, layers: dict[str, dict], images: int, count: int, new: bool):
        (out / "samples").mkdir(parents=True, exist_ok=True)
        self.predicted = _open(out, "predicted", (images,), np.int64, new)
        self.layers = {name: (_open(out, name, (images, count, info["channels"]), np.float32, new),
                              _open(out, f"{name}.pos", (images, count), np.int64, new),
                              _open(out, f"{name}.attr", (images, count), np.float32, new))
                       for name, info in layers.items()}

    def store(self, kept: Sequence[int], failed: Sequence[tuple[int, str]], samples: dict | None) -> None:
        """Write one batch's samples (from :func:`sample_batch`); skipped rows get NaN / -1."""
        rows = np.asarray(list(kept), dtype=np.int64)
        bad = np.asarray([i for i, _ in failed], dtype=np.int64)
        if len(rows):
            self.predicted[rows] = samples["predicted"].numpy()
        self.predicted[bad] = -1
        for name, maps in self.layers.items():
            for m, fill, k in zip(maps, (np.nan, -1, np.nan), range(3)):
                if len(rows):
                    m[rows] = samples[name][k].numpy()
                m[bad] = fill

    def flush(self) -> None:
        self.predicted.flush()
        for maps in self.layers.values():
            for m in maps:
                m.flush()
