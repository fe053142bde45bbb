"""Temporary model patches for painting (average pooling, circular padding), always restored."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from torch import nn

from ..errors import SynthvizError
from ..models import Model


def _swap_children(net: nn.Module, make: Callable[[nn.Module], nn.Module | None]) -> list[tuple[nn.Module, str, nn.Module]]:
    swapped = []
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            new = make(child)
            if new is not None:
                setattr(parent, name, new)
                swapped.append((parent, name, child))
    return swapped


@contextlib.contextmanager
def pooling(model: Model, kind: str = "max") -> Iterator[Model]:
    """``kind="avg"``: every ``nn.MaxPool2d`` becomes an ``nn.AvgPool2d`` of the same geometry for the
    duration (Gatys: smoother gradients, smoother images); the original modules are put back after,
    even on error or Ctrl-C. ``"max"`` leaves the model alone."""
    if kind not in ("max", "avg"):
        raise SynthvizError(f"unknown pooling '{kind}'; use max or avg")

    def make(m: nn.Module) -> nn.Module | None:
        if kind == "avg" and isinstance(m, nn.MaxPool2d) and m.dilation in (1, (1, 1)):
            return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode, count_include_pad=False)
        return None

    swapped = _swap_children(model.net, make)
    try:
        yield model
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


@contextlib.contextmanager
def circular_padding(model: Model, enabled: bool = True) -> Iterator[Model]:
    """Make every zero padding of the network circular for the duration (convolutions' own
    padding and explicit ``ZeroPad2d`` modules), so a periodic image is seen as a torus:
    no border exists, and the texture is optimised to continue across its wrap-around."""
    if not enabled:
        yield model
        return
    convs = [m for m in model.net.modules()
             if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros" and m.padding != "valid"
             and any(p > 0 for p in (m.padding if isinstance(m.padding, tuple) else (1,)))]

    def make(m: nn.Module) -> nn.Module | None:
        if isinstance(m, nn.ConstantPad2d) and float(m.value) == 0.0:
            return nn.CircularPad2d(m.padding)
        return None

    swapped = _swap_children(model.net, make)
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield model
    finally:
        for conv in convs:
            conv.padding_mode = "zeros"
        for parent, name, child in swapped:
            setattr(parent, name, child)
