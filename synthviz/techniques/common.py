"""Argument handling shared by the techniques, so that the CLI, presets and Python agree."""

from __future__ import annotations

import os

import torch

from ..errors import SynthvizError
from ..io import load_image
from ..models import DEFAULT_MODEL, Model, load_model


def get_model(model: Model | str | torch.nn.Module = DEFAULT_MODEL, weights: str | os.PathLike = "default",
              device: str | torch.device | None = None) -> Model:
    """A :class:`Model` from whatever a technique was given (name, Model, nn.Module)."""
    return load_model(model, weights=weights, device=device)


def get_image(image: torch.Tensor | str | os.PathLike, size: int | None = None,
              what: str = "image") -> torch.Tensor:
    """An image as (1, 3, H, W) in [0, 1] from a path or a tensor; ``size`` sets the longer side."""
    from ..io import resize

    if isinstance(image, (str, os.PathLike)):
        return load_image(image, size)
    if not isinstance(image, torch.Tensor):
        raise SynthvizError(f"{what} must be a file path or a (1, 3, H, W) tensor in [0, 1]")
    image = image if image.dim() == 4 else image[None]
    if image.shape[1] != 3:
        raise SynthvizError(f"{what} must have 3 colour channels, not {image.shape[1]}")
    image = image.float().clamp(0, 1)
    return resize(image, size) if size else image


def positive(name: str, value: float) -> None:
    if value is not None and value <= 0:
        raise SynthvizError(f"{name} must be positive, not {value}")
