"""Argument handling shared by the techniques, so that the CLI, presets and Python agree."""

from __future__ import annotations

import os
from typing import Union

import torch

from ..errors import SynthvizError
from ..checks import positive  # noqa: F401  (re-exported: techniques import it from here)
from ..io import as_image
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
    ``size`` sets the longer side (see :func:`synthviz.io.as_image`, the one validator)."""
    return as_image(image, size, what)


