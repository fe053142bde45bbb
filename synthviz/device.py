"""Where work runs: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``."""

from __future__ import annotations

import torch

from .errors import SynthvizError


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
