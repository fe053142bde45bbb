"""The size rule every image read for a model obeys: the image itself, and the image at ``--size``,
must be at least the model's minimum on their shorter side. One rule, so every command that reads
photos for a model (index, embed, evaluate, attack-map...) skips or refuses the same ones (a 1x1
icon, a 20000x10 strip) with the same reason and fix."""

from __future__ import annotations

import math

from ..errors import BadImage

MAX_SUGGESTED_SIZE = 2048  # beyond this, raising --size is no real fix: crop the image instead


def scaled_shape(h: int, w: int, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """(h, w) of an h x w image resized as :func:`~synthviz.io.images.resize` does: an int sets the
    longer side (the aspect kept, each side at least 1 px), a pair is the exact shape, None keeps it."""
    if size is None:
        return h, w
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    k = size / max(h, w)
    return max(1, round(h * k)), max(1, round(w * k))


def size_problem(h: int, w: int, size: int | tuple[int, int] | None, min_side: int) -> tuple[str, str] | None:
    """Why an h x w image cannot be used at ``size`` (see :func:`scaled_shape`) by a model that needs
    ``min_side`` px on the shorter side, as ``(reason, fix)``; None when it can. The image itself
    must reach ``min_side`` too: a 1x1 pixel blown up to 224 px holds nothing to explain. Shapes
    are written width x height, as image viewers show them."""
    if min(h, w) < min_side:
        return (f"{w}x{h} px, smaller than the {min_side} px the model needs on the shorter side",
                f"use an image at least {min_side}x{min_side} px")
    sh, sw = scaled_shape(h, w, size)
    if min(sh, sw) >= min_side:
        return None
    shown = f"--size {size}" if isinstance(size, int) else f"{sw}x{sh}"
    reason = (f"{w}x{h} px: at {shown} its shorter side is {min(sh, sw)} px, "
              f"below the {min_side} px the model needs")
    need = max(1, math.floor((min_side - 0.5) * max(h, w) / min(h, w)))  # then up to the first that rounds right
    while min(scaled_shape(h, w, need)) < min_side and need <= MAX_SUGGESTED_SIZE:
        need += 1
    if isinstance(size, int) and need <= MAX_SUGGESTED_SIZE:
        return reason, f"use --size {need} or more"
    return reason, f"crop it to a less elongated shape (its sides are {max(h, w) / min(h, w):.0f}:1)"


def check_image_size(h: int, w: int, size: int | tuple[int, int] | None, min_side: int | None,
                     source: str = "image") -> None:
    """Raise :class:`~synthviz.errors.BadImage` ``"SOURCE: reason; fix"`` when :func:`size_problem`
    finds one (nothing to check when ``min_side`` is None)."""
    problem = size_problem(h, w, size, min_side) if min_side else None
    if problem:
        raise BadImage(f"{source}: {problem[0]}; {problem[1]}")
