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
from ..models import Model


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


def gradient_boxes(model: Model, layer: str, size: int, positions: list[tuple[int, int]], samples: int = 2,
                   seed: int = 0) -> list[tuple[int, int, int, int]]:
    """For each ``(y, x)``, the box ``(top, left, bottom, right)`` of input pixels where the gradient
    of layer ``layer``'s units there (all channels) is non-zero, on ``samples`` random images.
    One batched backward pass: batch elements are independent, so each position gets its own images."""
    gen = torch.Generator().manual_seed(seed)
    n = len(positions) * samples
    images = torch.rand(n, 3, size, size, generator=gen).to(model.device).requires_grad_(True)
    with model.evaluating(), Tap(model, [layer]) as tap, torch.enable_grad():
        act = tap(images)[layer]
        if act.dim() != 4:
            return [(0, 0, size, size)] * len(positions)
        rows = torch.arange(n, device=act.device)
        ys = torch.tensor([y for y, _ in positions for _ in range(samples)], device=act.device)
        xs = torch.tensor([x for _, x in positions for _ in range(samples)], device=act.device)
        act[rows, :, ys, xs].abs().sum().backward()
    seen = images.grad.abs().sum(1).reshape(len(positions), samples, size, size).sum(1) > 0
    boxes = []
    for s in seen:
        r, c = s.any(1).nonzero().flatten(), s.any(0).nonzero().flatten()
        boxes.append((int(r[0]), int(c[0]), int(r[-1]) + 1, int(c[-1]) + 1) if len(r) else (0, 0, size, size))
    return boxes


def gradient_box(model: Model, layer: str, size: int, y: int, x: int, samples: int = 2,
                 seed: int = 0) -> tuple[int, int, int, int]:
    """The measured box of the unit at ``(y, x)`` (see :func:`gradient_boxes`)."""
    return gradient_boxes(model, layer, size, [(y, x)], samples, seed)[0]


def receptive_field(model: Model, layer: str, size: int) -> ReceptiveField:
    """Measure the receptive field of ``layer`` for ``size`` x ``size`` inputs.

    The corner units' boxes at this size (their inner edges are not clipped when the field is
    smaller than the image) give stride, offset and extent in one batched backward pass; the
    result must predict all four measured boxes. Otherwise a larger canvas (up to 4x) is used to
    measure two neighbouring units unclipped; failing that, every unit sees the whole image.
    """
    with torch.no_grad():
        probe = torch.zeros(1, 3, size, size, device=model.device)
        with Tap(model, [layer]) as tap:
            shape = tap(probe)[layer].shape
    if len(shape) != 4:
        return ReceptiveField(size, float(size), size, 0.0, whole=True)
    h = shape[-2]
    if h >= 3:
        pos = [(0, 0), (1, 1), (h - 2, h - 2), (h - 1, h - 1)]
        boxes = gradient_boxes(model, layer, size, pos)
        stride = boxes[1][2] - boxes[0][2]
        offset = boxes[3][0] - stride * (h - 1)
        extent = boxes[0][2] - offset
        rf = ReceptiveField(size, float(stride), int(extent), float(offset))
        if stride > 0 and all(rf.box(y, x) == b for (y, x), b in zip(pos, boxes)) and 0 < boxes[3][0] \
                and boxes[1][2] < size:
            return rf
        if boxes[0] == boxes[3] == (0, 0, size, size):  # the corner units see it all: so does every unit
            return ReceptiveField(size, size / shape[-1], size, 0.0, whole=True)
    canvas = size
    while canvas <= 4 * size:
        g = _grid(model, layer, canvas)
        c = max(0, g // 2 - 1)
        if g >= 2:
            a, b = gradient_boxes(model, layer, canvas, [(c, c), (c + 1, c + 1)])
            if a[0] > 0 and a[1] > 0 and b[2] < canvas and b[3] < canvas:
                stride, extent = b[0] - a[0], a[2] - a[0]
                return ReceptiveField(size, float(stride), int(extent), float(a[0] - stride * c))
        canvas *= 2
    return ReceptiveField(size, size / shape[-1], size, 0.0, whole=True)


def _grid(model: Model, layer: str, size: int) -> int:
    with torch.no_grad(), Tap(model, [layer]) as tap:
        return int(tap(torch.zeros(1, 3, size, size, device=model.device))[layer].shape[-2])
