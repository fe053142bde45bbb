"""Style statistics of images too large for one pass (prints): the gradient of the style (Gram) and
content losses computed tile by tile with the **full image's** statistics.

A Gram matrix is not a sum of per-tile losses: G = (1/N) Σₜ Fₜ Fₜᵀ is a sum over tiles, but the
loss ‖G − G₀‖² / ‖G₀‖² is not. Its gradient is, once G is known: ∂L/∂Fₜ = 4 / (N ‖G₀‖²) · (G − G₀) Fₜ.
So each step makes two passes over the tiles: one without gradient for G at every style layer,
then one per tile back-propagating the surrogate 2 / ‖G₀‖² · ⟨G − G₀, Fₜ Fₜᵀ / N⟩ (same gradient)
plus its share of the content error. Each tile is read with a margin of context around it, and
only its core's features count, so the tiles' own borders do not show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..layers import Tap, layer_shape
from ..models import Model
from ..objectives import gram


def layer_strides(model: Model, layers: Sequence[str], size: int = 64) -> dict[str, int]:
    """Each layer's stride in pixels (its input side over its feature side, a power of two)."""
    return {n: 2 ** round(math.log2(size / layer_shape(model, n, size)[-1])) for n in layers}


def tiles(h: int, w: int, tile: int, align: int, offset: tuple[int, int] = (0, 0)) -> list[tuple[int, int, int, int]]:
    """Cores (top, bottom, left, right) covering (h, w), ``tile`` px (rounded down to ``align``) each,
    the grid shifted by ``offset`` (rounded to ``align``; the first row and column are then shorter),
    so that a render moving the offset every step never keeps a tile border in one place."""
    step = max(align, tile // align * align)

    def starts(n: int, off: int) -> list[int]:
        off = off % step // align * align
        return sorted({0, *range(off, n, step)})

    rows, cols = starts(h, offset[0]), starts(w, offset[1])
    rows_end, cols_end = rows[1:] + [h], cols[1:] + [w]
    return [(t, b, l, r) for t, b in zip(rows, rows_end) for l, r in zip(cols, cols_end)]


def _window(core: tuple[int, int, int, int], margin: int, h: int, w: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the ``core`` with ``margin`` px of context, inside (h, w)."""
    top, bottom, left, right = core
    return max(0, top - margin), min(h, bottom + margin), max(0, left - margin), min(w, right + margin)


def _core_features(tap: Tap, window: torch.Tensor, core: tuple[int, int, int, int], origin: tuple[int, int],
                   strides: dict[str, int]) -> dict[str, torch.Tensor]:
    """The features (1, C, h, w) of the ``core`` read from ``window`` (1, 3, h', w'), the crop of the
    image whose top-left corner is ``origin`` (y0, x0)."""
    top, bottom, left, right = core
    y0, x0 = origin
    acts = tap(window)
    return {name: acts[name][..., (top - y0) // s : math.ceil((bottom - y0) / s), (left - x0) // s : math.ceil((right - x0) / s)]
            for name, s in strides.items()}


def _aligned(model: Model, layers: Sequence[str], margin: int) -> tuple[dict[str, int], int, int]:
    """(strides, the largest stride, ``margin`` rounded up to a multiple of it)."""
    strides = layer_strides(model, layers)
    align = max(strides.values())
    return strides, align, math.ceil(margin / align) * align


def _tile_features(model: Model, image: torch.Tensor, layers: Sequence[str], tile: int, margin: int):
    """(core, {layer: the core's features (1, C, h, w)}, strides) for every tile of ``image``, no gradient."""
    strides, align, margin = _aligned(model, layers, margin)
    with torch.no_grad(), Tap(model, list(layers)) as tap:
        for core in tiles(*image.shape[-2:], tile, align):
            y0, y1, x0, x1 = _window(core, margin, *image.shape[-2:])
            yield core, _core_features(tap, image[..., y0:y1, x0:x1], core, (y0, x0), strides), strides


def tiled_gram(model: Model, image: torch.Tensor, layers: Sequence[str], tile: int,
               margin: int) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """The full image's Gram matrices {layer: (1, C, C)} (F Fᵀ / N) of ``image`` (1, 3, H, W) and the
    positions N per layer, from a no-grad pass over tiles of ``tile`` px with ``margin`` px of context."""
    sums: dict[str, torch.Tensor] = {}
    counts = {name: 0 for name in layers}
    for _, feats, _ in _tile_features(model, image, layers, tile, margin):
        for name, f in feats.items():
            n = f.shape[-2] * f.shape[-1]
            sums[name] = sums.get(name, 0) + gram(f) * n
            counts[name] += n
    return {name: sums[name] / counts[name] for name in layers}, counts


def tiled_features(model: Model, image: torch.Tensor, layer: str, tile: int, margin: int) -> torch.Tensor:
    """``layer``'s features (1, C, h, w) of the whole ``image`` (1, 3, H, W), assembled from tiles
    (no gradient): what one forward would give, to float rounding, with a tile's memory."""
    out = None
    for (top, _, left, _), feats, strides in _tile_features(model, image, [layer], tile, margin):
        f, s = feats[layer], strides[layer]
        if out is None:
            h, w = image.shape[-2:]
            out = f.new_zeros(1, f.shape[1], math.ceil(h / s), math.ceil(w / s))
        out[..., top // s : top // s + f.shape[-2], left // s : left // s + f.shape[-1]] = f
    return out


def tiled_style_gradient(model: Model, image: torch.Tensor, targets: dict[str, torch.Tensor],
                         layer_weights: Sequence[float], *, tile: int = 256, margin: int = 64,
                         content: tuple[str, torch.Tensor, float] | None = None,
                         offset: tuple[int, int] = (0, 0)) -> tuple[torch.Tensor, float]:
    """(∂loss/∂image (1, 3, H, W), loss) of Σₗ wₗ‖Gₗ − Tₗ‖²/‖Tₗ‖² (+ ``content`` = (layer, the content's
    full-size features (1, C, h, w), weight): weight · ‖F − F₀‖²/‖F₀‖²), computed tile by tile: memory
    is bounded by a tile plus its margin, not by the image.

    ``targets``: {layer: target Gram (1, C, C)}; ``layer_weights`` one per target layer; ``offset``
    shifts the backward pass's tile grid (:func:`tiles`)."""
    layers = list(targets)
    grams, counts = tiled_gram(model, image, layers, tile, margin)
    norms = {n: targets[n].pow(2).sum() for n in layers}
    diffs = {n: (grams[n] - targets[n]).detach() for n in layers}
    loss = sum(w * float(diffs[n].pow(2).sum() / norms[n]) for n, w in zip(layers, layer_weights))
    read = layers + ([content[0]] if content else [])
    strides, align, margin = _aligned(model, read, margin)
    grad = torch.zeros_like(image)
    with Tap(model, read) as tap:
        for core in tiles(*image.shape[-2:], tile, align, offset):
            y0, y1, x0, x1 = _window(core, margin, *image.shape[-2:])
            x = image[..., y0:y1, x0:x1].detach().clone().requires_grad_(True)
            feats = _core_features(tap, x, core, (y0, x0), strides)
            parts = [w * 2 / norms[n] * (diffs[n] * gram(feats[n]) * (feats[n].shape[-2] * feats[n].shape[-1] / counts[n])).sum()
                     for n, w in zip(layers, layer_weights)]
            if content:
                parts.append(_content_part(feats, content, core, strides))
            grad[..., y0:y1, x0:x1] += torch.autograd.grad(sum(parts), x)[0]
            if content:
                loss += float(parts[-1].detach())
    return grad, loss


def _content_part(feats: dict[str, torch.Tensor], content: tuple[str, torch.Tensor, float],
                  core: tuple[int, int, int, int], strides: dict[str, int]) -> torch.Tensor:
    """This core's share of weight · ‖F − F₀‖² / ‖F₀‖² (a sum over positions: the shares add up)."""
    name, target, weight = content
    s = strides[name]
    top, bottom, left, right = core
    f = feats[name]
    t = target[..., top // s : top // s + f.shape[-2], left // s : left // s + f.shape[-1]].to(f)
    return weight * (f - t).pow(2).sum() / target.pow(2).sum()
