"""Image parameterizations: learnable tensors that always produce valid RGB in [0, 1].

Each is an ``nn.Module`` whose ``forward()`` takes no input and returns ``(B, 3, H, W)``.
``project()`` runs after every optimizer step (pixel clamping, fooling budgets).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SynthvizError
from .registry import Registry

# Square root of the ImageNet colour correlation (Lucid), normalised so its columns' max norm is 1.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_CORRELATION = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


def decorrelate_colors(x: torch.Tensor) -> torch.Tensor:
    """Map decorrelated colour channels to RGB. (B, 3, H, W) -> (B, 3, H, W)."""
    return torch.einsum("ij,bjhw->bihw", COLOR_CORRELATION.to(x), x)


def correlate_colors(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`decorrelate_colors`."""
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(COLOR_CORRELATION).to(x), x)


def _as_batch(init: torch.Tensor, batch: int, h: int, w: int) -> torch.Tensor:
    """Resize an init image (1 or B, 3, H', W') to (batch, 3, h, w)."""
    init = init.detach().float()
    if init.dim() == 3:
        init = init[None]
    if init.shape[-2:] != (h, w):
        init = F.interpolate(init, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return init.clamp(0, 1).expand(batch, -1, -1, -1).contiguous().clone()


class ImageParam(nn.Module):
    """Base: ``forward() -> (B, 3, H, W)`` in [0, 1]."""

    batch: int
    size: tuple[int, int]
    grey: bool = False  # True: every image is grey (R = G = B), e.g. a texture of a greyscale example

    def __call__(self) -> torch.Tensor:
        x = super().__call__()
        # a grey example constrains no colour: without this, colour noise of the start (and the
        # Fourier image's 1/f-amplified low-frequency chroma) would survive as coloured patches
        return x.mean(1, keepdim=True).expand_as(x) if self.grey else x

    def project(self) -> None:
        """Called after each optimizer step; keep the parameters valid."""

    def resized(self, h: int, w: int) -> "ImageParam":
        """A new parameterization of the same kind at another size, starting from this image."""
        raise TypeError(f"{type(self).__name__} does not support resizing")

    @torch.no_grad()
    def image(self) -> torch.Tensor:
        return self().detach().clamp(0, 1)


class PixelImage(ImageParam):
    """Raw pixels, clamped to ``[lower, upper]`` (default [0, 1]) after every step.

    Args:
        batch, h, w: output shape (B, 3, h, w).
        init: start image (B or 1, 3, H, W) in [0, 1]; default grey plus noise of std ``sd``.
    """

    def __init__(self, batch: int = 1, h: int = 128, w: int | None = None, sd: float = 0.1,
                 init: torch.Tensor | None = None):
        super().__init__()
        w = w or h
        self.batch, self.size, self.sd = batch, (h, w), sd
        start = _as_batch(init, batch, h, w) if init is not None else (0.5 + sd * torch.randn(batch, 3, h, w)).clamp(0, 1)
        self.pixels = nn.Parameter(start)
        self.lower: torch.Tensor | float = 0.0
        self.upper: torch.Tensor | float = 1.0

    def forward(self) -> torch.Tensor:
        return self.pixels

    @torch.no_grad()
    def project(self) -> None:
        if isinstance(self.lower, float) and isinstance(self.upper, float):
            self.pixels.clamp_(self.lower, self.upper)  # in place: no allocation in the hot loop
        else:
            self.pixels.data = torch.maximum(torch.minimum(self.pixels, torch.as_tensor(self.upper).to(self.pixels)),
                                             torch.as_tensor(self.lower).to(self.pixels))

    def resized(self, h: int, w: int) -> "PixelImage":
        return PixelImage(self.batch, h, w, self.sd, init=self.image()).to(self.pixels.device)


def _freqs(h: int, w: int) -> torch.Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


class FourierImage(ImageParam):
    """Fourier coefficients scaled by 1/frequency^decay, decorrelated colour, sigmoid (Lucid).

    Natural-image statistics make the optimisation favour low frequencies, so features come out
    without high-frequency noise. The image is periodic: it tiles seamlessly.

    Args:
        batch, h, w: output shape (B, 3, h, w).
        decay: spectrum decay power (1 = 1/f).
        sd: std of the random initial coefficients.
        decorrelate: optimise in the decorrelated colour space.
        init: start image (B or 1, 3, H, W) in [0, 1]; default random.
    """

    def __init__(self, batch: int = 1, h: int = 128, w: int | None = None, decay: float = 1.0,
                 sd: float = 0.01, decorrelate: bool = True, init: torch.Tensor | None = None):
        super().__init__()
        w = w or h
        self.batch, self.size, self.decay, self.sd, self.decorrelate = batch, (h, w), decay, sd, decorrelate
        scale = 1.0 / torch.clamp(_freqs(h, w), min=1.0 / max(h, w)) ** decay
        self.register_buffer("scale", scale / 4.0, persistent=False)  # /4: Lucid's constant against saturation
        if init is None:
            coeffs = sd * torch.randn(batch, 3, h, w // 2 + 1, 2)
        else:
            coeffs = self._coeffs_of(_as_batch(init, batch, h, w))
        self.coeffs = nn.Parameter(coeffs)

    def _coeffs_of(self, image: torch.Tensor) -> torch.Tensor:
        x = torch.logit(image.clamp(1e-3, 1 - 1e-3))
        if self.decorrelate:
            x = correlate_colors(x)
        spec = torch.fft.rfft2(x, norm="ortho") / self.scale
        return torch.view_as_real(spec).contiguous()

    def forward(self) -> torch.Tensor:
        spec = torch.view_as_complex(self.coeffs) * self.scale
        x = torch.fft.irfft2(spec, s=self.size, norm="ortho")
        if self.decorrelate:
            x = decorrelate_colors(x)
        return torch.sigmoid(x)

    def resized(self, h: int, w: int) -> "FourierImage":
        return FourierImage(self.batch, h, w, self.decay, self.sd, self.decorrelate,
                            init=self.image()).to(self.coeffs.device)


PARAMS: Registry[Callable[..., ImageParam]] = Registry("parameterization", "use fourier or pixel")
PARAMS.register("pixel")(PixelImage)
PARAMS.register("fourier")(FourierImage)


def make_param(kind: str = "fourier", batch: int = 1, size: int | tuple[int, int] = 128,
               init: torch.Tensor | None = None, **kwargs) -> ImageParam:
    """Build a registered parameterization: ``make_param("fourier", batch=4, size=128)``."""
    h, w = (size, size) if isinstance(size, int) else size
    if min(h, w) < 8:
        raise SynthvizError(f"image size {h}x{w} is too small; use --size 32 or more")
    return PARAMS.get(kind)(batch, h, w, init=init, **kwargs)
