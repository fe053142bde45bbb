"""What a model costs to run: probes that measure it once (every leaf module's output for an image
of a given size, through a :class:`~synthviz.layers.Tap`) and the checks built on them.

* :func:`check_size` refuses a render side below a model's minimum, or one whose memory estimate
  (:func:`render_bytes_per_pixel`) exceeds what the machine has free;
* :func:`check_canvas` does the same for a canvas rendered through crops (MaCo), whose side is
  not the model's input;
* :func:`largest_activation` sizes the batches of the forward-only attribution methods
  (:mod:`synthviz.attribution.batching`).
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

import torch

from .checks import positive
from .device import fits_in_memory
from .errors import BadValue
from .layers import Tap
from .models import Model

_LARGEST: WeakKeyDictionary = WeakKeyDictionary()  # network -> {image shape: bytes}


def leaf_outputs(model: Model, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every leaf module of ``model.net`` (first call each, raw layout) in one
    no-grad forward of ``x`` (B, 3, H, W) in [0, 1], in forward order."""
    leaves = [n for n, m in model.net.named_modules() if n and next(m.children(), None) is None]
    with torch.no_grad(), Tap(model, leaves, truncate=False, strict=False, spatial=False) as tap:
        return list(tap(x.to(model.device)).values())


def render_bytes_per_pixel(model: Model) -> float:
    """Memory a render on ``model`` takes per input pixel: every layer's output per pixel, measured
    once at a small size (at the fixed input size of a model that has one), kept for the backward
    pass and its gradient (x 3, float32)."""
    fixed = model.input_size
    side = min(fixed) if fixed else max(model.min_size, 64)
    try:
        counts = [a.numel() for a in leaf_outputs(model, torch.zeros(1, 3, side, side))]
    except Exception:  # the real render reports what is wrong
        counts = [0]
    return 3 * 4 * (sum(counts) + 3 * side * side) / (side * side)


def check_size(model: Model, size: int | tuple[int, int], batch: int = 1, pixels: int | None = None,
               fix: str | None = None) -> None:
    """Refuse a render ``size`` below ``model``'s minimum, or one whose memory estimate (``batch``
    images of ``size`` x ``size``, or ``pixels`` in all) exceeds the free memory (the message ends
    with ``fix``). A model with a fixed input size renders at that size, whatever ``size`` says."""
    size = model.input_size or size
    size = min(size) if isinstance(size, tuple) else size
    positive("size", size, integer=True)
    positive("batch", batch, integer=True)
    if size < model.min_size:
        raise BadValue(f"image size {size} is too small for {model.name}; use --size {model.min_size} or more")
    if getattr(model, "_bytes_per_pixel", None) is None:  # measured once per model
        model._bytes_per_pixel = render_bytes_per_pixel(model)
    pixels = pixels if pixels is not None else batch * size * size
    fits_in_memory(model._bytes_per_pixel * pixels, f"a {size} px render on {model.name}", model.device,
                   **({"fix": fix} if fix else {}))


# A MaCo canvas per pixel, float32 (measured with saved_tensors_hooks at 128 and 256 px: 48 bytes
# saved for the backward pass, 6 of phase): the saved tensors, the phase with its gradient and
# Adam's two moments, the image and the transients of the FFT -> about 96; each crop view adds a
# copy of the canvas kept for grid_sample's backward (12) and its gradient (12).
CANVAS_BYTES_PER_PIXEL = 96
CANVAS_BYTES_PER_CROP = 24


def check_canvas(shape: tuple[int, int], batch: int = 1, crops: int = 1, device=None) -> None:
    """Refuse a canvas (h, w) whose memory estimate (``batch`` canvases seen through ``crops``
    views per step) exceeds the free memory, with the estimate in the one-line message."""
    h, w = shape
    estimate = batch * h * w * (CANVAS_BYTES_PER_PIXEL + CANVAS_BYTES_PER_CROP * max(1, crops))
    fits_in_memory(estimate, f"a {w}x{h} px canvas", device, fix="use a smaller --canvas")


def largest_activation(model: Model, x: torch.Tensor) -> int:
    """Bytes of the largest module output (or the input) one image of ``x`` (B, C, H, W) makes in
    a forward; measured by one batch-1 forward, once per network and image shape."""
    memo = _LARGEST.setdefault(model.net, {})
    key = tuple(x.shape[1:])
    if key not in memo:
        one = x[:1].detach()
        sizes = [one.numel() * one.element_size()]
        sizes += [a.numel() * a.element_size() for a in leaf_outputs(model, one)]
        memo[key] = max(sizes)
    return memo[key]
