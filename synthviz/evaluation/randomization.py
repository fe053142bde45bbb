"""Model randomization tests (Adebayo et al. 2018): a map that explains the model must change
when the model's weights do.

* **Cascading**: re-initialise the blocks from the logits down, one more at each step.
* **Independent**: re-initialise one block at a time, the others keeping their trained weights.

Every randomized network is a private deep copy (:func:`synthviz.randomize.randomize`, or one copy
walked down by :func:`synthviz.randomize.cascade`, as the ``sanity`` technique does); the user's
model is never touched. Similarity to the original map is the Spearman rank correlation of |map|
and the SSIM of the min-max normalised |map| (``kornia.metrics.ssim``). A method whose map stays
similar with the whole network randomized (either similarity above ``SIMILAR``) is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..models import Model
from ._maps import (
    cascade,
    randomization_blocks,
    randomize,
    relevance,
    resolve_targets,
    spearman,
)

SIMILAR = 0.5  # Spearman or SSIM above this after full randomization: the map ignores the weights


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11) -> float:
    """Mean SSIM of |a| and |b| (each (B, 1, H, W), min-max normalised per map)."""
    from kornia.metrics import ssim as kssim

    def norm(m: torch.Tensor) -> torch.Tensor:
        m = torch.nan_to_num(m.float().abs())
        lo, hi = m.flatten(1).amin(1).view(-1, 1, 1, 1), m.flatten(1).amax(1).view(-1, 1, 1, 1)
        return (m - lo) / (hi - lo).clamp(min=1e-12)

    window = min(window, min(a.shape[-2:]) // 2 * 2 - 1)
    return float(kssim(norm(a), norm(b), window).mean())


def similarity(original: torch.Tensor, other: torch.Tensor) -> dict:
    """``{"spearman": ..., "ssim": ...}`` of two maps (or batches of maps)."""
    return {"spearman": spearman(original, other), "ssim": ssim(original, other)}


def independent(model: Model, images: torch.Tensor, method: str, target=None, layers: Sequence[str] | None = None,
                seed: int = 0, **options) -> list[dict]:
    """One row per block (default: every block with parameters, top down): the block, and the
    similarity of the map with only that block re-initialised to the original map."""
    x = images.to(model.device)
    target = resolve_targets(model, x, target)  # the trained model's class, kept for every copy
    layers = list(layers) if layers is not None else list(reversed(randomization_blocks(model, x)))
    original = relevance(model, x, method, target, **options)
    rows = []
    for layer in layers:
        maps = relevance(randomize(model, layer, seed), x, method, target, **options)
        rows.append({"layer": layer, **similarity(original, torch.nan_to_num(maps))})
    return rows


def cascading(model: Model, images: torch.Tensor, method: str, target=None, depth: int | None = None,
              seed: int = 0, **options) -> list[dict]:
    """One row per step: the block randomized last (top down, ``depth`` steps at most) and the
    similarity of the map with it and every block above it re-initialised to the original map."""
    x = images.to(model.device)
    target = resolve_targets(model, x, target)
    layers = list(reversed(randomization_blocks(model, x)))[:depth]
    original = relevance(model, x, method, target, **options)
    rows = []
    for layer, work in cascade(model, layers, seed):
        maps = relevance(work, x, method, target, **options)
        rows.append({"layer": layer, **similarity(original, torch.nan_to_num(maps))})
    return rows


def stays_similar(row: dict, limit: float = SIMILAR) -> bool:
    """True when a randomized map is still similar to the original (the method fails the test)."""
    return row["spearman"] > limit or row["ssim"] > limit
