"""Checks of numeric options, the same for the command line and Python: each returns the value
(so ``steps = positive("steps", steps)``) or raises :class:`~synthviz.errors.BadValue` with one
line that names the option and the fix. ``None`` passes every check (it means "the default")."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from .errors import BadValue


def _number(name: str, value, integer: bool = False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadValue(f"{name} must be {'an integer' if integer else 'a number'}, not {type(value).__name__} {value!r}")
    if integer and not float(value).is_integer():
        raise BadValue(f"{name} must be a whole number, not {value}")
    if not math.isfinite(float(value)):
        raise BadValue(f"{name} must be a finite number, not {value}")
    return int(value) if integer else value


def finite(name: str, value):
    """A real, finite number (not NaN, not inf)."""
    return None if value is None else _number(name, value)


def positive(name: str, value, integer: bool = False):
    """A finite number > 0 (a whole number when ``integer``)."""
    if value is None:
        return None
    value = _number(name, value, integer)
    if value <= 0:
        raise BadValue(f"{name} must be positive, not {value}")
    return value


def non_negative(name: str, value, integer: bool = False):
    """A finite number >= 0 (0 usually means "off")."""
    if value is None:
        return None
    value = _number(name, value, integer)
    if value < 0:
        raise BadValue(f"{name} must be 0 or more, not {value}")
    return value


def in_range(name: str, value, low: float, high: float, integer: bool = False):
    """A finite number in [``low``, ``high``]."""
    if value is None:
        return None
    value = _number(name, value, integer)
    if not low <= value <= high:
        raise BadValue(f"{name} must be in [{low:g}, {high:g}], not {value}")
    return value


def choice(name: str, value: str, choices: Iterable[str]) -> str:
    """One of ``choices``; the error lists them."""
    choices = list(choices)
    if value not in choices:
        raise BadValue(f"unknown {name} '{value}'; use one of: {', '.join(choices)}")
    return value


def available_memory(device=None) -> int | None:
    """Bytes free for a new allocation: the CUDA device's free memory, else the system's
    ``MemAvailable`` (``/proc/meminfo``; ``os.sysconf`` elsewhere). None when unknown."""
    import os

    try:
        import torch

        dev = torch.device(device) if device is not None else torch.device("cpu")
        if dev.type == "cuda" and torch.cuda.is_available():
            return int(torch.cuda.mem_get_info(dev)[0])
    except Exception:  # an odd device string: the caller's own check reports it
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def fits_in_memory(estimate: float, what: str, device=None) -> None:
    """Refuse work whose memory ``estimate`` (bytes) exceeds what the machine has free, with the
    estimate in the message (a clear error now instead of an allocator traceback later)."""
    from .errors import TooLarge

    free = available_memory(device)
    if free is not None and estimate > free:
        raise TooLarge(f"{what} needs about {_gib(estimate)} of memory but {_gib(free)} is free; "
                       "use a smaller --size (or fewer images at once)")


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def render_size(model, size: int, batch: int = 1, pixels: int | None = None) -> None:
    """Refuse a ``size`` below ``model``'s minimum, or one whose memory estimate for a render
    (``batch`` images of ``size`` x ``size``, or ``pixels`` in all) exceeds the free memory."""
    positive("size", size, integer=True)
    positive("batch", batch, integer=True)
    if size < model.min_size:
        raise BadValue(f"image size {size} is too small for {model.name}; use --size {model.min_size} or more")
    if getattr(model, "_bytes_per_pixel", None) is None:
        model._bytes_per_pixel = render_bytes_per_pixel(model)
    pixels = pixels if pixels is not None else batch * size * size
    fits_in_memory(model._bytes_per_pixel * pixels, f"a {size} px render on {model.name}", model.device)


def render_bytes_per_pixel(model) -> float:
    """Memory a render on ``model`` (a :class:`~synthviz.models.Model`) takes per input pixel:
    every layer's output per pixel, measured once at a small size (at the fixed input size of a
    model that has one), kept for the backward pass and its gradient (x 3, float32)."""
    import torch

    from .layers import Tap

    fixed = getattr(model, "input_size", None)
    side = min(fixed) if fixed else max(model.min_size, 64)
    leaves = [n for n, m in model.net.named_modules() if n and next(m.children(), None) is None]
    try:
        with torch.no_grad(), Tap(model, leaves, truncate=False, strict=False, spatial=False) as tap:
            counts = [a.numel() for a in tap(torch.zeros(1, 3, side, side, device=model.device)).values()]
    except Exception:  # the real render reports what is wrong
        counts = [0]
    return 3 * 4 * (sum(counts) + 3 * side * side) / (side * side)


def finite_weights(model):
    """``model`` unless a weight or buffer is NaN/inf (a broken checkpoint): then one-line
    :class:`~synthviz.errors.BadModel`. Checked once per model (weights never change here)."""
    import torch

    from .errors import BadModel

    if getattr(model, "_finite_checked", False):
        return model
    bad = next((n for n, t in [*model.net.named_parameters(), *model.net.named_buffers()]
                if t.is_floating_point() and not torch.isfinite(t).all()), None)
    if bad is not None:
        raise BadModel(f"{model.name} has NaN/inf values in {bad}; check --weights (the checkpoint is broken)")
    model._finite_checked = True
    return model
