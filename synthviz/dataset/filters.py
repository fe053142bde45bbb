"""First-layer filters as images: the kernels of the first convolution that reads the RGB input,
each min-max scaled on its own, enlarged without smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SynthvizError
from ..models import Model


def first_conv(model: Model) -> tuple[str, nn.Conv2d]:
    """The first ``Conv2d`` the forward pass runs that reads 3 channels: (name, module)."""
    order: list[str] = []
    modules = {n: m for n, m in model.net.named_modules() if isinstance(m, nn.Conv2d)}
    handles = [m.register_forward_pre_hook(lambda mod, inp, n=n: order.append(n)) for n, m in modules.items()]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64, device=model.device))
    except Exception:  # noqa: BLE001 - fall back to the declaration order
        order = list(modules)
    finally:
        for h in handles:
            h.remove()
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
