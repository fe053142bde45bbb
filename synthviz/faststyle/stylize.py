"""Applying a trained style network: one forward pass per image, any size (the output has the
input's size), one style, a mixture of styles (mixing the conditional instance norm's (γ, β)),
or a style per masked region."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import SynthvizError
from ..io import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .checkpoint import load_net
from .masks import composite
from .net import TransformNet

NetLike = TransformNet | str | os.PathLike


def get_net(net: NetLike, device: str | torch.device | None = None) -> tuple[TransformNet, list[str]]:
    """(network in eval mode, style names) from a checkpoint path or a network."""
    if isinstance(net, TransformNet):
        if device is not None:
            from ..models import resolve_device

            net = net.to(resolve_device(device))
        return net.eval(), [f"style {k}" for k in range(net.styles)]
    return load_net(net, device)


def mix_weights(mix: str | Sequence[float], styles: int) -> torch.Tensor:
    """``"0.3,0.7"`` or [0.3, 0.7] -> (S,) weights normalised to sum 1."""
    try:
        values = [float(v) for v in (mix.split(",") if isinstance(mix, str) else mix)]
    except ValueError:
        raise SynthvizError(f"cannot read --mix '{mix}'; write one weight per style like 0.3,0.7") from None
    if len(values) != styles:
        raise SynthvizError(f"{len(values)} mixing weight(s) for a network of {styles} style(s); give one weight per style")
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise SynthvizError(f"mixing weights {values} must be non-negative with a positive sum")
    return torch.tensor(values) / sum(values)


def style_choices(net: TransformNet, style: int | Sequence[int] = 0,
                  mix: str | Sequence[float] | None = None) -> list[int | torch.Tensor]:
    """What to paint with: a list of style indices, or one mixture (S,) when ``mix`` is given."""
    if mix is not None:
        return [mix_weights(mix, net.styles)]
    styles = [style] if isinstance(style, int) else [int(s) for s in style]
    for s in styles:
        if not 0 <= s < net.styles:
            raise SynthvizError(f"style {s} is out of range; this network holds styles 0 to {net.styles - 1}")
    return styles


@torch.no_grad()
def apply_net(net: TransformNet, images: torch.Tensor, choices: Sequence[int | torch.Tensor],
              masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Stylise (B, 3, H, W) in [0, 1] -> (B, 3, H, W) on the CPU.

    Without masks the first choice paints the whole image; with masks (one (1, 1, H, W) per
    choice) each choice paints its region and the content shows where no mask is set."""
    dev = net.out[1].weight.device
    x = images.to(dev)
    if masks is None:
        return net(x, choices[0]).cpu()
    if len(masks) != len(choices):
        raise SynthvizError(f"{len(masks)} mask(s) for {len(choices)} style(s); give one --style per --mask")
    return composite([net(x, c) for c in choices], masks, x).cpu()


def input_kind(path: str | os.PathLike) -> str:
    """``folder``, ``video`` or ``image`` by what ``path`` is (a GIF is a video)."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise SynthvizError(f"input not found: {path}; pass an image, a folder of images or a video")
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def folder_images(folder: str | os.PathLike) -> list[Path]:
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SynthvizError(f"no images in {folder}; put PNG or JPEG files there")
    return files
