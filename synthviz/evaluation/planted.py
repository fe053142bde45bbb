"""Images with planted patterns: the known answers of the concept and whole-layer benchmarks.

Each image is noise (a random colour, low-contrast pixel noise) with one pattern planted in it:
``stripes`` (horizontal or vertical, 4 px period), a ``red disk``, a ``checkerboard`` (4 px
squares), or ``noise`` (nothing planted). ``fill=True`` plants the pattern over the whole frame (the
atlas and dissection benchmarks; for dissection with few images of each pattern among many of
noise, so that a pattern covers a small share of all pixels), otherwise in a square of half the
image at a random place (the concept benchmark). The mask of each image marks where its pattern is, so the answer of a
dictionary (which images hold a concept), an atlas (which cells hold a pattern) or a dissection
(which units fire on a pattern) is known.

    images, labels, masks = planted_images(per_pattern=20, size=128)   # (80, 3, 128, 128), (80,), (80, 1, 128, 128)
    write_planted("planted", per_pattern=20, size=128)   # planted/images/<pattern>/*.png + labels.csv, planted/masks/
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..io import atomic_write, save_image

PATTERNS = ("stripes", "red disk", "checkerboard", "noise")


def _pattern(name: str, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One pattern filling a ``size``² square: (colour (3, size, size) in [0, 1], where (1, size, size))."""
    r = torch.arange(size, dtype=torch.float32)
    yy, xx = r[:, None].expand(size, size), r[None, :].expand(size, size)
    ink, paper = torch.rand(3, 1, 1, generator=gen), torch.rand(3, 1, 1, generator=gen)
    if name == "stripes":
        bars = ((yy if torch.rand((), generator=gen) < 0.5 else xx) // 2 % 2)
        return bars * ink + (1 - bars) * paper, torch.ones(1, size, size)
    if name == "checkerboard":
        cells = ((yy // 4) + (xx // 4)) % 2
        return cells * ink + (1 - cells) * paper, torch.ones(1, size, size)
    if name == "red disk":
        c = (size - 1) / 2
        disk = (((yy - c) ** 2 + (xx - c) ** 2) <= (0.42 * size) ** 2).float()[None]
        red = torch.tensor([0.85, 0.05, 0.05]).view(3, 1, 1) + 0.1 * torch.rand(3, 1, 1, generator=gen)
        return disk * red.clamp(0, 1), disk
    return torch.zeros(3, size, size), torch.zeros(1, size, size)  # noise: nothing planted


def planted_images(per_pattern: int | Sequence[int] = 20, size: int = 128, *, patterns: tuple[str, ...] = PATTERNS,
                   fill: bool = False, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``per_pattern`` images of each pattern (or one count per pattern, e.g. ``(4, 4, 4, 52)`` so
    that each planted pattern covers a small share of all pixels), in pattern order: images
    (N, 3, size, size) in [0, 1], labels (N,) (the index of the pattern in ``patterns``) and masks
    (N, 1, size, size) in {0, 1}."""
    unknown = [p for p in patterns if p not in PATTERNS]
    if unknown:
        raise ValueError(f"unknown pattern {unknown[0]!r}; choose from {', '.join(PATTERNS)}")
    counts = [int(per_pattern)] * len(patterns) if isinstance(per_pattern, int) else [int(c) for c in per_pattern]
    if len(counts) != len(patterns) or min(counts) < 0:
        raise ValueError(f"give one count >= 0 per pattern ({len(patterns)}), not {per_pattern!r}")
    gen = torch.Generator().manual_seed(seed)
    n = sum(counts)
    images = (0.2 + 0.6 * torch.rand(n, 3, 1, 1, generator=gen) + 0.1 * torch.randn(n, 3, size, size, generator=gen))
    images, masks = images.clamp(0, 1), torch.zeros(n, 1, size, size)
    labels = torch.arange(len(patterns)).repeat_interleave(torch.tensor(counts, dtype=torch.long))
    side = size if fill else size // 2
    for i in range(n):
        colour, where = _pattern(patterns[int(labels[i])], side, gen)
        y, x = (0, 0) if fill else torch.randint(0, size - side + 1, (2,), generator=gen).tolist()
        window = images[i, :, y:y + side, x:x + side]
        images[i, :, y:y + side, x:x + side] = where * colour + (1 - where) * window
        masks[i, :, y:y + side, x:x + side] = where
    return images, labels, masks


def write_planted(folder: str | os.PathLike, per_pattern: int | Sequence[int] = 20, size: int = 128, *,
                  patterns: tuple[str, ...] = PATTERNS, fill: bool = False, seed: int = 0) -> Path:
    """Write :func:`planted_images` into ``folder``: the images as ``folder/images/<pattern>/<i>.png``
    (an ImageFolder: the sub-folder is the label) with ``folder/images/labels.csv`` (``path,label``,
    paths relative to it, in pattern order), and each image's mask beside them, outside the image
    folder, as ``folder/masks/<pattern>/<i>.png`` holding the pattern's class id + 1 where it is
    planted (0 elsewhere: Network Dissection's segmentation format). Returns ``folder``."""
    folder = Path(folder)
    images, labels, masks = planted_images(per_pattern, size, patterns=patterns, fill=fill, seed=seed)
    rows = ["path,label"]
    for i, (image, label, mask) in enumerate(zip(images, labels.tolist(), masks)):
        name = f"{patterns[label].replace(' ', '_')}/{i:04d}.png"
        save_image(image, _made(folder / "images" / name), overwrite=True)
        ids = (mask * (label + 1)).to(torch.uint8).expand(3, -1, -1)
        save_image(ids.float() / 255.0, _made(folder / "masks" / name), overwrite=True)
        rows.append(f"{name},{patterns[label]}")
    atomic_write(folder / "images" / "labels.csv", "\n".join(rows) + "\n")
    return folder


def _made(path: Path) -> Path:
    """``path`` with its folder made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
