"""Regularizers with literature defaults.

Three kinds, all plain values:

* **penalties** are :class:`~synthviz.objectives.Objective` values that are already negative,
  so a recipe adds them: ``class_score(285) + l2(1e-4) + total_variation(0.05)``. They read
  the image before the robustness transforms and are means over pixels, so their weights do
  not depend on the image size.
* **step operations** change the pixels between optimizer steps (blur every k steps,
  Yosinski's clipping); they need the pixel parameterization.
* **robustness transforms** are in :mod:`synthviz.transforms`.
"""

from __future__ import annotations

import torch
from kornia.filters import gaussian_blur2d

from .errors import SynthvizError
from .objectives import Objective, register_objective
from .params import ImageParam, PixelImage


# ----------------------------------------------------------------------------- penalties
def l2_norm(x: torch.Tensor) -> torch.Tensor:
    """Mean squared distance from grey. (B, 3, H, W) -> (B,)."""
    return (x - 0.5).pow(2).flatten(1).mean(1)


def alpha_norm_of(x: torch.Tensor, alpha: float = 6.0) -> torch.Tensor:
    """Mean of ``|x − 0.5|^α`` (Mahendran & Vedaldi's bounded-range prior). (B, 3, H, W) -> (B,)."""
    return (x - 0.5).abs().pow(alpha).flatten(1).mean(1)


def tv_norm(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Total variation ``mean((dx² + dy²)^(β/2))``. (B, 3, H, W) -> (B,).

    kornia's ``total_variation`` is the β = 1 anisotropic case only, hence this one.
    """
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (dx * dx + dy * dy + 1e-8).pow(beta / 2).flatten(1).mean(1)


def cross_differences(x: torch.Tensor) -> torch.Tensor:
    """``x[i,j] − x[i+1,j] − x[i,j+1] + x[i+1,j+1]``: the 2-pixel checkerboard component, zero on a
    smooth gradient or an edge along an axis. (..., H, W) -> (..., H − 1, W − 1)."""
    return x[..., :-1, :-1] - x[..., 1:, :-1] - x[..., :-1, 1:] + x[..., 1:, 1:]


def checker_norm(x: torch.Tensor) -> torch.Tensor:
    """Mean squared :func:`cross_differences` of each channel: the energy of the checkerboard that
    strided convolutions' gradients paint. (B, 3, H, W) -> (B,)."""
    return cross_differences(x).pow(2).flatten(1).mean(1)


@register_objective()
def l2(weight: float = 1e-4) -> Objective:
    """L2 decay (Yosinski: 1e-4)."""
    return Objective(lambda c: -weight * l2_norm(c.image), f"{weight:g}*l2")


@register_objective()
def alpha_norm(weight: float = 1e-3, alpha: float = 6.0) -> Objective:
    """α-norm penalty (Mahendran & Vedaldi: α = 6)."""
    return Objective(lambda c: -weight * alpha_norm_of(c.image, alpha), f"{weight:g}*alpha{alpha:g}")


@register_objective()
def total_variation(weight: float = 1.0, beta: float = 2.0) -> Objective:
    """Total variation with exponent β (Mahendran & Vedaldi: β = 2)."""
    return Objective(lambda c: -weight * tv_norm(c.image, beta), f"{weight:g}*tv{beta:g}")


@register_objective()
def checkerboard(weight: float = 1.0) -> Objective:
    """Penalise the checkerboard only (:func:`checker_norm`): unlike total variation it leaves the
    fine texture a style paints."""
    return Objective(lambda c: -weight * checker_norm(c.image), f"{weight:g}*checker")


# ------------------------------------------------------------------------ step operations
def _pixels(param: ImageParam, what: str) -> torch.nn.Parameter:
    if not isinstance(param, PixelImage):
        raise SynthvizError(f"{what} works on the pixel parameterization only; use --param pixel")
    return param.pixels


class BlurEvery:
    """Gaussian blur of the pixels every ``every`` steps (Yosinski: σ 1.0 every 4 steps).

    ``sigma_end`` with ``steps``: σ goes linearly from ``sigma`` to ``sigma_end`` over the render
    (coarse structure first, detail last, as in Øygard's deepdraw)."""

    def __init__(self, every: int = 4, sigma: float = 1.0, sigma_end: float | None = None, steps: int = 0):
        self.every, self.sigma, self.sigma_end, self.steps = every, sigma, sigma_end, steps

    def sigma_at(self, step: int) -> float:
        if self.sigma_end is None or self.steps <= 1:
            return self.sigma
        t = min(1.0, step / (self.steps - 1))
        return self.sigma + t * (self.sigma_end - self.sigma)

    @torch.no_grad()
    def __call__(self, param: ImageParam, step: int) -> None:
        if self.every and (step + 1) % self.every == 0:
            sigma = self.sigma_at(step)
            if sigma <= 0:
                return
            k = max(3, 2 * int(3 * sigma) + 1)
            px = _pixels(param, "blur")
            px.data = gaussian_blur2d(px.data, (k, k), (sigma, sigma), border_type="reflect")


class Decay:
    """Yosinski's L2 decay as a step: ``x ← grey + (1 − θ)(x − grey)`` every step."""

    def __init__(self, theta: float = 0.01):
        self.keep = 1.0 - theta

    @torch.no_grad()
    def __call__(self, param: ImageParam, step: int) -> None:
        px = _pixels(param, "decay")
        px.sub_(0.5).mul_(self.keep).add_(0.5)


class ClipSmallNorm:
    """Set pixels whose colour norm (from grey) is below the ``percentile`` to grey (Yosinski: 20)."""

    def __init__(self, percentile: float = 20.0):
        self.q = percentile / 100

    @torch.no_grad()
    def __call__(self, param: ImageParam, step: int) -> None:
        px = _pixels(param, "norm clipping")
        norm = (px - 0.5).norm(dim=1, keepdim=True)  # (B, 1, H, W)
        cut = torch.quantile(norm.flatten(1), self.q, dim=1).view(-1, 1, 1, 1)
        px.data = torch.where(norm < cut, torch.full_like(px, 0.5), px)


class ClipSmallContribution:
    """Set pixels with small contribution ``|x · ∇x|`` (below the ``percentile``) to grey (Yosinski)."""

    def __init__(self, percentile: float = 50.0):
        self.q = percentile / 100

    @torch.no_grad()
    def __call__(self, param: ImageParam, step: int) -> None:
        px = _pixels(param, "contribution clipping")
        if px.grad is None:
            return
        contrib = ((px - 0.5) * px.grad).abs().sum(1, keepdim=True)
        cut = torch.quantile(contrib.flatten(1), self.q, dim=1).view(-1, 1, 1, 1)
        px.data = torch.where(contrib < cut, torch.full_like(px, 0.5), px)
