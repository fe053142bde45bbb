"""The receptive field of a layer's units, measured from the network itself.

The input pixels a unit can see are where the gradient of that unit with respect to the input is
non-zero. Measured on a few random images (so no ReLU is dead everywhere and every max-pool
branch is taken somewhere) for two neighbouring units, this gives the field's size, the stride
between neighbouring units and the offset of the first one: the unit at grid position ``(y, x)``
sees input rows ``offset + stride * y`` to ``offset + stride * y + size`` (clipped to the image),
and likewise for columns. Nothing is guessed from layer names or assumed about padding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..layers import Tap
from ..models import Model, frozen


@dataclass(frozen=True)
class ReceptiveField:
    """Geometry of a layer's units on a ``size`` x ``size`` input (along each axis, square inputs).

    ``stride``: input pixels between neighbouring units; ``extent``: the field's side;
    ``offset``: where unit 0's field starts (negative: it reaches into the padding).
    ``whole``: the field covers the whole input (fully connected and very deep layers).
    """

    size: int
    stride: float
    extent: int
    offset: float
    whole: bool = False

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """The input box ``(top, left, bottom, right)`` (bottom/right exclusive) seen by unit ``(y, x)``."""
        if self.whole:
            return 0, 0, self.size, self.size
        top, left = round(self.offset + self.stride * y), round(self.offset + self.stride * x)
        clip = lambda v: max(0, min(self.size, v))  # noqa: E731
        return clip(top), clip(left), clip(top + self.extent), clip(left + self.extent)

    def to_dict(self) -> dict:
        return asdict(self)


def gradient_box(model: Model, layer: str, size: int, y: int, x: int, samples: int = 4,
                 seed: int = 0) -> tuple[int, int, int, int]:
    """The box ``(top, left, bottom, right)`` of input pixels where the gradient of layer ``layer``'s
    units at ``(y, x)`` (all channels) is non-zero, on ``samples`` random images."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(samples, 3, size, size, generator=gen).to(model.device).requires_grad_(True)
    with frozen(model.net), Tap(model, [layer]) as tap, torch.enable_grad():
        act = tap(images)[layer]
        if act.dim() != 4:
            return 0, 0, size, size
        act[:, :, y, x].abs().sum().backward()
    seen = images.grad.abs().sum((0, 1)) > 0
    rows, cols = seen.any(1).nonzero().flatten(), seen.any(0).nonzero().flatten()
    if not len(rows):
        return 0, 0, size, size
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def receptive_field(model: Model, layer: str, size: int) -> ReceptiveField:
    """Measure the receptive field of ``layer`` for ``size`` x ``size`` inputs.

    Two neighbouring units near the centre give the stride and the extent; if their fields
    reach the border at this size, a larger canvas (up to 8x) is used to measure them unclipped.
    """
    with torch.no_grad():
        probe = torch.zeros(1, 3, size, size, device=model.device)
        with Tap(model, [layer]) as tap:
            shape = tap(probe)[layer].shape
    if len(shape) != 4:
        return ReceptiveField(size, float(size), size, 0.0, whole=True)
    canvas = size
    while True:
        h = _grid(model, layer, canvas)
        c = max(0, h // 2 - 1)
        if h >= 2:
            a = gradient_box(model, layer, canvas, c, c)
            b = gradient_box(model, layer, canvas, c + 1, c + 1)
            unclipped = a[0] > 0 and a[1] > 0 and b[2] < canvas and b[3] < canvas
            if unclipped:
                stride, extent = b[0] - a[0], a[2] - a[0]
                # the offset is measured on the canvas; the input of the run shares the grid's
                # origin (top-left) as long as padding does not depend on the size
                offset = a[0] - stride * c
                return ReceptiveField(size, float(stride), int(extent), float(offset))
        if canvas >= 8 * size:
            return ReceptiveField(size, size / shape[-1], size, 0.0, whole=True)
        canvas *= 2


def _grid(model: Model, layer: str, size: int) -> int:
    with torch.no_grad(), Tap(model, [layer]) as tap:
        return int(tap(torch.zeros(1, 3, size, size, device=model.device))[layer].shape[-2])
