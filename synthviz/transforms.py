"""Robustness transforms applied to the image before each forward pass.

Plain callables ``(B, 3, H, W) -> (B, 3, H', W')`` whose output size is the same at every step
(a new input shape at each step makes oneDNN rebuild its kernels on CPU: ~60% slower), so random
scaling and rotation happen inside a fixed canvas. Built on kornia's differentiable warps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from kornia.geometry.transform import get_affine_matrix2d, warp_affine

Transform = Callable[[torch.Tensor], torch.Tensor]


def pad(width: int, value: float = 0.5) -> Transform:
    """Constant padding (Lucid: 12 px of grey)."""
    return lambda x: F.pad(x, (width,) * 4, value=value)


def jitter(d: int) -> Transform:
    """Random crop of ``d`` pixels less on each side (the output is ``d`` smaller, every step)."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        dy, dx = (int(v) for v in torch.randint(0, d + 1, (2,)))
        return x[..., dy : dy + h - d, dx : dx + w - d]

    return fn


def roll(d: int) -> Transform:
    """Random circular shift by up to ``d`` pixels (CS231n jitter; keeps the size)."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        dy, dx = (int(v) for v in torch.randint(-d, d + 1, (2,)))
        return torch.roll(x, (dy, dx), dims=(-2, -1))

    return fn


def random_affine(scales: Sequence[float] = (0.9, 1.1), degrees: float = 10.0,
                  padding_mode: str = "reflection") -> Transform:
    """Random scale in ``scales`` and rotation in ±``degrees``, per batch element, same canvas."""
    lo, hi = min(scales), max(scales)

    def fn(x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        s = torch.empty(b, device=x.device).uniform_(lo, hi)
        angle = torch.empty(b, device=x.device).uniform_(-degrees, degrees)
        center = torch.tensor([[(w - 1) / 2, (h - 1) / 2]], device=x.device).expand(b, 2)
        m = get_affine_matrix2d(torch.zeros(b, 2, device=x.device), center, torch.stack([s, s], 1), angle)
        return warp_affine(x, m[:, :2].to(x.dtype), (h, w), padding_mode=padding_mode, align_corners=True)

    return fn


def random_scale(scales: Sequence[float] = (0.9, 1.1)) -> Transform:
    """Random zoom in ``scales`` inside the same canvas."""
    return random_affine(scales, 0.0)


def random_rotate(degrees: float = 10.0) -> Transform:
    """Random rotation in ±``degrees`` inside the same canvas."""
    return random_affine((1.0, 1.0), degrees)


def compose(*transforms: Transform) -> Transform:
    def fn(x: torch.Tensor) -> torch.Tensor:
        for t in transforms:
            x = t(x)
        return x

    return fn


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def standard_transforms() -> Transform:
    """The Feature Visualization article's robustness: pad 12, jitter 8, scale, rotate, jitter 4."""
    return compose(pad(12), jitter(8), random_affine((0.9, 1.1), 10.0), jitter(4))


def robust_transforms(size: int = 128, scales: Sequence[float] = (0.8, 1.2), degrees: float = 15.0) -> Transform:
    """Stronger robustness for larger images (Lucid's class renders): padding and jitter that grow
    with the image (``size``/16 and ``size``/32, at least Lucid's 12/8/4 px), a wider zoom and
    rotation range. The output is ``size + 2·pad − j1 − j2`` px at every step."""
    p, j1 = max(12, size // 16), max(8, size // 16)
    j2 = max(4, size // 32)
    return compose(pad(p), jitter(j1), random_affine(scales, degrees), jitter(j2))
