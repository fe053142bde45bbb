"""First-layer filters as images: the kernels of the first convolution that reads the RGB input,
each min-max scaled on its own, enlarged without smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SynthvizError
from ..layers import Tap
from ..models import Model


def first_conv(model: Model) -> tuple[str, nn.Conv2d]:
    """The first ``Conv2d`` the forward pass runs that reads 3 channels: (name, module)."""
    modules = {n: m for n, m in model.net.named_modules() if isinstance(m, nn.Conv2d)}
    with torch.no_grad(), Tap(model, list(modules), truncate=False, strict=False) as tap:
        order = list(tap(torch.zeros(1, 3, 64, 64, device=model.device)))  # the convs that ran, in order
    for name in order:
        if modules[name].in_channels == 3:
            return name, modules[name]
    raise SynthvizError(f"{model.name} has no convolution on the RGB input; first-layer filters need one")


def filter_images(model: Model, scale: int = 8) -> tuple[torch.Tensor, str]:
    """The first convolution's filters as images (O, 3, k * scale, k * scale) in [0, 1], each
    min-max scaled on its own; and the layer's name. Grouped/depthwise RGB convs give grey tiles."""
    name, conv = first_conv(model)
    w = conv.weight.detach().float().cpu()
    if w.shape[1] == 1:
        w = w.expand(-1, 3, -1, -1)
    flat = w.flatten(1)
    lo, hi = flat.min(1).values[:, None, None, None], flat.max(1).values[:, None, None, None]
    images = (w - lo) / (hi - lo).clamp_min(1e-12)
    return F.interpolate(images, scale_factor=scale, mode="nearest"), name
