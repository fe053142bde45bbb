"""Magnitude-constrained optimization (MaCo; Fel et al., NeurIPS 2023).

Feature visualization of deep or transformer models with a free Fourier or pixel image gives
high-frequency noise. MaCo fixes the amplitude spectrum to that of natural images and optimizes
only the phase; each step the model sees random crops of the canvas. synthviz computes the
amplitude spectrum from images (horama downloads one): a spectrum of the scikit-image photos
ships in the package (``maco_spectrum.pt``), and :func:`amplitude_spectrum` makes one from any folder::

    spectrum = amplitude_spectrum("my_photos/", size=256)           # (3, 256, 129)
    param = MacoImage(1, 512, spectrum=spectrum)                     # canvas (1, 3, 512, 512)
    synthviz.render(model, objective, param, transforms=random_crops(224))
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SynthvizError
from .params import PARAMS, correlate_colors, decorrelate_colors, ImageParam
from .transforms import Transform

SPECTRUM_FILE = Path(__file__).with_name("maco_spectrum.pt")
SPECTRUM_SIZE = 256


def amplitude_spectrum(images: str | os.PathLike | Sequence[torch.Tensor] | torch.Tensor,
                       size: int = SPECTRUM_SIZE) -> torch.Tensor:
    """The mean amplitude spectrum |rfft2| of images in decorrelated colour, (3, size, size // 2 + 1).

    ``images``: a folder of photos, a list of (1 or 3, H, W) / (1, 3, H, W) tensors in [0, 1], or a
    (B, 3, H, W) batch. Each is centre-cropped to a square, resized to ``size``, centred (mean 0)."""
    from .io import list_images, read_all, skipped_note

    if isinstance(images, (str, os.PathLike)):
        loaded, skipped = read_all(list_images(images), where=os.fspath(images))
        if skipped:
            warnings.warn(skipped_note(skipped), stacklevel=2)
        images = [image for _, image in loaded]
    elif isinstance(images, torch.Tensor):
        images = list(images if images.dim() == 4 else images[None])
    total = torch.zeros(3, size, size // 2 + 1)
    for im in images:
        im = im if im.dim() == 4 else im[None]
        im = im.expand(-1, 3, -1, -1) if im.shape[1] == 1 else im
        h, w = im.shape[-2:]
        side = min(h, w)
        im = im[..., (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
        im = F.interpolate(im.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        x = correlate_colors(im - im.mean((2, 3), keepdim=True))
        total += torch.fft.rfft2(x, norm="ortho").abs()[0]
    return total / len(images)


def default_spectrum() -> torch.Tensor:
    """The shipped spectrum of the scikit-image photos, (3, 256, 129)."""
    return torch.load(SPECTRUM_FILE, weights_only=True).float()


def resize_spectrum(spectrum: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """An rfft amplitude spectrum (3, H, W//2 + 1) at another image size (3, h, w//2 + 1): the
    frequencies are centred, the log amplitude interpolated, then uncentred; the amplitude is
    scaled by √(hw / HW) so that ``norm="ortho"`` images keep their contrast."""
    src_h = spectrum.shape[-2]
    if (src_h, spectrum.shape[-1]) == (h, w // 2 + 1):
        return spectrum
    centred = torch.fft.fftshift(spectrum.clamp(min=1e-8).log(), dim=-2)
    out = F.interpolate(centred[None], size=(h, w // 2 + 1), mode="bilinear", align_corners=True)[0]
    src_w = 2 * (spectrum.shape[-1] - 1)
    return torch.fft.ifftshift(out, dim=-2).exp() * ((h * w) / (src_h * src_w)) ** 0.5


class MacoImage(ImageParam):
    """Only the phase is learnt; the amplitude is a natural-image spectrum (MaCo).

    image = sigmoid(decorrelated colour(standardised irfft2(A · e^{iφ}))), (B, 3, h, w).

    Args:
        batch, h, w: canvas shape.
        spectrum: amplitude (3, H, W//2+1) (default: the shipped one), resized to the canvas.
        init: a start image (B or 1, 3, H', W') in [0, 1]: its phase is taken (the amplitude stays natural).
        sd: std of the random initial phase.
    """

    def __init__(self, batch: int = 1, h: int = 224, w: int | None = None, spectrum: torch.Tensor | None = None,
                 init: torch.Tensor | None = None, sd: float = 1.0):
        super().__init__()
        w = w or h
        self.batch, self.size, self.sd = batch, (h, w), sd
        amp = resize_spectrum(default_spectrum() if spectrum is None else spectrum.float(), h, w)
        self.register_buffer("amplitude", amp, persistent=False)
        if init is None:
            phase = sd * torch.randn(batch, 3, h, w // 2 + 1)
        else:
            from .params import _as_batch

            x = correlate_colors(torch.logit(_as_batch(init, batch, h, w).clamp(1e-3, 1 - 1e-3)))
            phase = torch.fft.rfft2(x, norm="ortho").angle()
        self.phase = nn.Parameter(phase)

    def forward(self) -> torch.Tensor:
        spec = torch.polar(self.amplitude.expand_as(self.phase), self.phase)
        x = torch.fft.irfft2(spec, s=self.size, norm="ortho")
        x = (x - x.mean((2, 3), keepdim=True)) / (x.std((2, 3), keepdim=True) + 1e-4)
        return torch.sigmoid(decorrelate_colors(x))

    def resized(self, h: int, w: int) -> "MacoImage":
        return MacoImage(self.batch, h, w, init=self.image()).to(self.phase.device)


PARAMS.register("maco")(MacoImage)


def random_crops(out: int | tuple[int, int] | None = None, scale: tuple[float, float] = (0.3, 1.0),
                 noise: float = 0.05, n: int = 1) -> Transform:
    """``n`` random square crops of each image (side a ``scale`` fraction of the canvas, anywhere
    inside), resized to ``out`` (the model's input; None: the canvas size), plus Gaussian noise of
    std ``noise`` (as horama). (B, 3, H, W) -> (n·B, 3, oh, ow), view-major: row j·B + i is crop j
    of image i; :func:`synthviz.engine.render` averages an image's value over its crops."""
    lo, hi = scale

    def fn(x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0] * n
        oh, ow = x.shape[-2:] if out is None else (out, out) if isinstance(out, int) else out
        s = torch.empty(b, device=x.device).uniform_(lo, hi)
        cx = (torch.rand(b, device=x.device) * 2 - 1) * (1 - s)
        cy = (torch.rand(b, device=x.device) * 2 - 1) * (1 - s)
        theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = s, s, cx, cy
        grid = F.affine_grid(theta, [b, 3, oh, ow], align_corners=False)
        crops = F.grid_sample(x.repeat(n, 1, 1, 1) if n > 1 else x, grid, mode="bilinear", align_corners=False)
        return crops + noise * torch.randn_like(crops) if noise else crops

    return fn


MAX_DEFAULT_CANVAS = 512  # the default canvas (twice the model's input) is capped at this side, for CPUs


def canvas_size(size: tuple[int, int], canvas: int | None = None) -> tuple[int, int]:
    """The MaCo canvas (h, w) for a model input ``size`` (h, w): ``canvas`` px on the longer side
    (None: twice the input, at most 512 px and never below the input), the input's aspect kept."""
    side = max(size)
    target = canvas if canvas is not None else max(side, min(2 * side, MAX_DEFAULT_CANVAS))
    if target < side:
        raise SynthvizError(f"canvas {target} is smaller than the model's input ({side} px); "
                            f"use --canvas {side} or more")
    return round(size[0] * target / side), round(size[1] * target / side)
