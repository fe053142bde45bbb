"""Checkpoints of a style network: the architecture, the styles' names, the weights, and for
resuming the optimizer state, the step and the training settings. Plain tensors, numbers and
strings only, so they load with ``torch.load(weights_only=True)`` (no pickled code)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import SynthvizError
from ..io import state_bytes, write_file
from .net import NetSpec, TransformNet

FORMAT = "synthviz-faststyle/1"


def save_checkpoint(path: str | os.PathLike, net: TransformNet, names: list[str], *, step: int = 0,
                    optimizer: torch.optim.Optimizer | None = None, config: dict | None = None,
                    overwrite: bool = True) -> Path:
    """Write ``net`` (and what resuming needs) to ``path`` atomically; returns the path written."""
    data = {"format": FORMAT, "arch": net.spec.to_dict(), "styles": list(names), "step": int(step),
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "config": dict(config or {})}
    if optimizer is not None:
        data["optimizer"] = optimizer.state_dict()
    return write_file(path, state_bytes(data), overwrite=overwrite)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint's dict, loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise SynthvizError(f"style network not found: {path}; train one with `synthviz style-train`")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SynthvizError(f"cannot read {path} as a style network ({type(e).__name__}); "
                            "pass a .pt file written by `synthviz style-train`") from None
    if isinstance(data, dict) and data.get("format") == "synthviz-adain/1":
        raise SynthvizError(f"{path} is an AdaIN network: give it a style image with --style-image (no --style or --mix index)")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SynthvizError(f"{path} is not a synthviz style network; pass a .pt file written by `synthviz style-train`")
    return data


def net_from(data: dict, path: str | os.PathLike = "the checkpoint") -> TransformNet:
    """The network a checkpoint's dict describes, its weights loaded. A body that does not fit its
    format tag (a key missing, a tensor of the wrong shape, style names that do not match the
    architecture) is one line naming the file ``path``."""
    try:
        spec = NetSpec.from_dict(data["arch"])
        names = data["styles"]
        if not isinstance(names, (list, tuple)) or len(names) != spec.styles:
            raise ValueError(f"{spec.styles} style(s) in the architecture, names {names!r}")
        net = TransformNet(spec.styles, spec.channels, spec.res_blocks)
        net.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, SynthvizError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else " ".join(str(e).split())[:120] or type(e).__name__
        raise SynthvizError(f"{path} is damaged: its style network cannot be rebuilt ({what}); "
                            "train it again with `synthviz style-train`, or use another checkpoint") from None
    return net


def load_net(path: str | os.PathLike, device: str | torch.device | None = None) -> tuple[TransformNet, list[str]]:
    """(network in eval mode on ``device``, style names) from a checkpoint."""
    from ..models import resolve_device

    data = read_checkpoint(path)
    return net_from(data, path).eval().to(resolve_device(device)), [str(n) for n in data["styles"]]
