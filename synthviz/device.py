"""Where work runs: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``; how much memory it
has free (:func:`fits_in_memory` refuses work that would not fit); and its random state
(:func:`seeded`: reproducible work that leaves the caller's random state alone)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from .errors import SynthvizError, TooLarge


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when present, else CPU; anything else as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SynthvizError(f"unknown device '{device}'; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SynthvizError("CUDA is not available on this machine; use --device cpu")
    return dev


def available_memory(device=None) -> int | None:
    """Bytes free for a new allocation: the CUDA device's free memory, else the system's
    ``MemAvailable`` (``/proc/meminfo``; ``os.sysconf`` elsewhere). None when unknown."""
    try:
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


def fits_in_memory(estimate: float, what: str, device=None,
                   fix: str = "use a smaller --size (or fewer images at once)") -> None:
    """Refuse work whose memory ``estimate`` (bytes) exceeds what the machine has free, with the
    estimate and ``fix`` in the message (a clear error now instead of an allocator traceback later)."""
    free = available_memory(device)
    if free is not None and estimate > free:
        raise TooLarge(f"{what} needs about {_gib(estimate)} of memory but {_gib(free)} is free; {fix}")


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device | None = None) -> Iterator[None]:
    """Make everything random inside (init, transforms) reproducible, leaving the caller's RNG alone."""
    if seed is None:
        yield
        return
    devices = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
