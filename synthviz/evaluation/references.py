"""Random reference rows matched in smoothness: what a map that knows nothing scores.

An i.i.d. random map (one value per pixel) is a poor reference for a smooth map: deletion removes
its top pixels as salt-and-pepper noise, off the image manifold, and on chelsea at 224 px it beats
Grad-CAM (AUC 0.32 vs 0.49). The ``random`` rows therefore draw random values on each method's
*native grid* (Grad-CAM: the layer's 7×7 at 224 px; RISE: its mask cells; pixel methods: every
pixel) and upsample them the way the CAM family does (bilinear), so a method is compared with
noise of its own smoothness. Every reference row is the mean over :data:`DRAWS` draws.

Methods are grouped by their grid's stride (image side ÷ grid side, the same on every image of a
model); the row matched to the coarsest stride is ``random``, the one at pixel resolution is
``random_pixels`` (the i.i.d. map, also available by name), any other ``random@<stride>``.
"""

from __future__ import annotations

import torch

from ._maps import upsample

DRAWS = 8
RANDOM = ("random", "random_pixels")  # the names a user may ask for


def is_random(method: str) -> bool:
    """True for a random reference row (``random``, ``random_pixels``, ``random@16``)."""
    return method in RANDOM or method.startswith("random@")


def stride(grid: tuple[int, int], size: tuple[int, int]) -> int:
    """How many image pixels one grid cell spans along the longer side (1: pixel resolution)."""
    return max(1, round(max(size) / max(grid)))


def reference_rows(grids: dict[str, tuple[int, int]], size: tuple[int, int], asked: list[str]) -> dict[str, list[str]]:
    """{row name: the methods it matches} from each method's native grid on one image (H, W) ``size``.

    ``asked``: the random rows the user named (``random`` always; ``random_pixels`` if listed)."""
    by_stride: dict[int, list[str]] = {}
    for method, grid in grids.items():
        by_stride.setdefault(stride(grid, size), []).append(method)
    rows: dict[str, list[str]] = {}
    for s in sorted(by_stride, reverse=True):
        name = "random" if not rows else "random_pixels" if s == 1 else f"random@{s}"
        rows[name] = by_stride[s]
    if not rows:
        rows["random"] = []
    if "random_pixels" in asked and "random_pixels" not in rows:
        rows["random_pixels"] = []
    return rows


def random_maps(size: tuple[int, int], cell: int, draws: int = DRAWS, seed: int = 0) -> torch.Tensor:
    """(draws, 1, H, W) random maps: uniform values on a grid of ``cell``-pixel cells (⌈H/cell⌉ ×
    ⌈W/cell⌉), upsampled bilinearly to ``size``; ``cell`` 1 gives i.i.d. pixels."""
    h, w = size
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(draws, 1, max(1, -(-h // cell)), max(1, -(-w // cell)), generator=gen)
    return upsample(small, (h, w))


def describe(name: str, methods: list[str], cell: int) -> str:
    """One line for the report: what reference row ``name`` is."""
    grid = "every pixel (i.i.d.)" if cell == 1 else f"a grid of {cell}-pixel cells, upsampled bilinearly"
    matched = f", matched to {', '.join(methods)}" if methods else ""
    return f"{name}: random values on {grid}{matched}; mean over {DRAWS} draws"
