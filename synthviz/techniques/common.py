"""Argument handling shared by the techniques, so that the CLI, presets and Python agree.
(A model comes from :func:`synthviz.models.load_model`, an image from :func:`synthviz.io.as_image`.)"""

from __future__ import annotations

import os
from typing import Union

import torch

from ..errors import SynthvizError

ImageLike = Union[torch.Tensor, str, os.PathLike]  # an image file or a (1, 3, H, W) tensor in [0, 1]


def require(value, what: str):
    """``value`` unless it is missing: techniques take the model first, so inputs default to None."""
    if value is None:
        raise SynthvizError(f"no {what} given; pass a file path or a (1, 3, H, W) tensor in [0, 1]")
    return value
