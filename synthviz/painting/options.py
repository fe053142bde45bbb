"""Reading the options texture synthesis and style transfer share: lists, blend weights,
choices, minimum sizes, default learning rates, greyscale warnings."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from ..checks import positive
from ..errors import SynthvizError

STATS = ("gram", "moments")
MIN_STYLE_SIDE = 64  # below this the deepest style layers see a handful of positions: statistics are noise
MIN_SIDE = 32  # the smallest image a ladder scale may have


def as_list(value: str | Sequence | None) -> list | None:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]``; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def check_min_side(image: torch.Tensor, what: str, minimum: int = MIN_STYLE_SIDE) -> None:
    h, w = image.shape[-2:]
    if min(h, w) < minimum:
        raise SynthvizError(f"{what} is only {w}x{h} px: too small for style statistics; "
                            f"use an image at least {minimum} px on its shorter side")


def is_grey(image: torch.Tensor, tol: float = 2 / 255) -> bool:
    """True when the three channels are (nearly) equal: a greyscale image read as RGB."""
    return bool((image - image.mean(1, keepdim=True)).abs().amax() <= tol)


def _floats(value: float | Sequence[float] | str, what: str) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str):
        try:
            return [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise SynthvizError(f"cannot read {what} '{value}'; write them like 0.7,0.3") from None
    return [float(v) for v in value]


def _normalised(values: list[float], what: str) -> list[float]:
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise SynthvizError(f"{what} {values} must be non-negative with a positive sum")
    return [v / sum(values) for v in values]


def blend_weights(weights: float | Sequence[float] | str | None, count: int) -> list[float]:
    """Blend weights normalised to sum 1, one per style image (default equal)."""
    if weights is None:
        return [1.0 / count] * count
    values = _floats(weights, "blend weights")
    if len(values) != count:
        raise SynthvizError(f"{len(values)} blend weight(s) for {count} style image(s); give one weight per style image")
    return _normalised(values, "blend weights")


def check_stat(stat: str) -> None:
    if stat not in STATS:
        raise SynthvizError(f"unknown style statistic '{stat}'; use gram or moments")


def default_lr(optimizer: str, param: str, lr: float | None) -> float:
    if lr is not None:
        return positive("lr", lr)
    return 1.0 if optimizer == "lbfgs" else 0.05 if param == "fourier" else 0.02


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise SynthvizError(f"unknown {name} '{value}'; use {' or '.join(choices)}")


def warn_grey_style(content: torch.Tensor, styles: Sequence[torch.Tensor], preserve: bool) -> None:
    """A greyscale style on a colour content makes a grey picture: say so, and how to keep colour."""
    if preserve or is_grey(content):
        return
    for i, s in enumerate(styles):
        if is_grey(s):
            warnings.warn(f"style image {i + 1} is greyscale but the content is in colour: the result will be grey; "
                          "add --preserve-colors to keep the content's colours", stacklevel=3)
