"""Network weights: reproducible random initialisation and local checkpoints (``weights_only=True``)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from .device import seeded
from .errors import SynthvizError


def seeded_init(seed: int = 0) -> contextlib.AbstractContextManager[None]:
    """Random initialisation that is the same every time, without touching the caller's RNG
    (:func:`synthviz.device.seeded` on the CPU, where modules are built)."""
    return seeded(seed)


def load_checkpoint(net: nn.Module, path: str | os.PathLike, model_name: str, assign: bool = False) -> None:
    """Load a local state dict into ``net`` with ``weights_only=True``; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise SynthvizError(f"weights file not found: {path}; pass an existing checkpoint, 'default' or 'random'")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and unsupported-global errors all mean "not a usable checkpoint"
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise SynthvizError(
            f"cannot read weights file {path} ({reason}); save it with torch.save(model.state_dict(), PATH)"
        ) from None
    for key in ("state_dict", "model_state_dict", "model"):  # common training-script wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise SynthvizError(f"weights file {path} holds no state dict; save it with torch.save(model.state_dict(), PATH)")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        example = (missing or unexpected or shapes)[0]
        raise SynthvizError(
            f"weights file {path} does not fit model {model_name} ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(shapes)} mis-shaped tensors, e.g. '{example}'); "
            "check --model matches the checkpoint"
        )
    net.load_state_dict(state, assign=assign)


def from_checkpoint(build: Callable[[], nn.Module], path: str | os.PathLike, name: str) -> nn.Module:
    """Build the architecture without initialising its weights (on the meta device), then take every
    tensor from the checkpoint; falls back to an ordinary build if anything stays uninitialised."""
    with torch.device("meta"):
        net = build()
    load_checkpoint(net, path, name, assign=True)
    if any(t.is_meta for t in [*net.parameters(), *net.buffers()]):
        with seeded_init():
            net = build()
        load_checkpoint(net, path, name)
    return net


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url``'s host answers a TCP connection within ``timeout`` s (behind a proxy: assumed,
    the download itself finds out)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    parts = urlparse(url)
    try:
        socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)),
                                 timeout).close()
    except OSError:
        return False
    return True
