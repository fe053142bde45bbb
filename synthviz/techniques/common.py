"""Argument handling shared by the techniques, so that the CLI, presets and Python agree."""

from __future__ import annotations

import os
from typing import Union

import torch

from ..errors import SynthvizError
from ..io import load_image
from ..models import DEFAULT_MODEL, Model, load_model


ImageLike = Union[torch.Tensor, str, os.PathLike]  # an image file or a (1, 3, H, W) tensor in [0, 1]


def require(value, what: str):
    """``value`` unless it is missing: techniques take the model first, so inputs default to None."""
    if value is None:
        raise SynthvizError(f"no {what} given; pass a file path or a (1, 3, H, W) tensor in [0, 1]")
    return value


def get_model(model: Model | str | torch.nn.Module = DEFAULT_MODEL, weights: str | os.PathLike = "default",
              device: str | torch.device | None = None) -> Model:
    """A :class:`Model` from whatever a technique was given (name, Model, nn.Module)."""
    return load_model(model, weights=weights, device=device)


def get_image(image: torch.Tensor | str | os.PathLike, size: int | None = None,
              what: str = "image") -> torch.Tensor:
    """An image as a contiguous (1, 3, H, W) float tensor in [0, 1], from a path or a tensor;
    ``size`` sets the longer side. Tensors of the wrong mode get one-line errors (grey/RGBA
    channels, 0-255 values, several images in one tensor)."""
    from ..io import resize

    if isinstance(image, (str, os.PathLike)):
        return load_image(image, size)
    if not isinstance(image, torch.Tensor):
        raise SynthvizError(f"{what} must be a file path or a (1, 3, H, W) tensor in [0, 1]")
    if image.dim() not in (3, 4) or (image.dim() == 4 and image.shape[0] != 1):
        raise SynthvizError(f"{what} has shape {tuple(image.shape)}; give one image as a (1, 3, H, W) tensor")
    channels = image.shape[-3]
    if channels != 3:
        fix = "repeat the grey channel 3 times" if channels == 1 else "drop the alpha channel" if channels == 4 else "convert it to RGB"
        raise SynthvizError(f"{what} has {channels} channel(s) but RGB (3) is needed; {fix}")
    if image.dtype == torch.uint8 or float(image.max()) > 1.0 + 1e-3 or float(image.min()) < -1e-3:
        raise SynthvizError(f"{what} is not in [0, 1] (an 8-bit image?); divide it by 255")
    image = (image if image.dim() == 4 else image[None]).float().clamp(0, 1)
    # contiguous: a channels-last image would give a pixel parameter whose gradient L-BFGS cannot view
    return (resize(image, size) if size else image).contiguous()


def positive(name: str, value: float) -> None:
    if value is not None and value <= 0:
        raise SynthvizError(f"{name} must be positive, not {value}")
