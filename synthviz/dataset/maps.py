"""Activation maps of a unit over its top images, overlaid on them (the unit pages show them):

    overlays = dataset.activation_maps(run, "_blocks.8", unit=12, k=4)        # (4, 3, S, S) in [0, 1]
    maps = dataset.activation_maps(run, "_blocks.8", unit=12, k=4, raw=True)  # (4, h, w) the unit's maps
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ..errors import SynthvizError
from ..layers import Tap
from ..models import Model, load_model
from .run import Run, open_run


def overlay(image: torch.Tensor, amap: torch.Tensor) -> torch.Tensor:
    """(3, H, W) image with a (h, w) activation map (min-max scaled, upsampled) laid over it in red."""
    a = amap.float()[None, None]
    a = F.interpolate(a, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    a = (a - a.min()) / (a.max() - a.min()).clamp_min(1e-12)
    red = torch.stack([torch.ones_like(a), torch.zeros_like(a), torch.zeros_like(a)])
    return (image * (1 - 0.55 * a) + red * 0.55 * a).clamp(0, 1)


def unit_maps(model: Model, layer: str, images: torch.Tensor, unit: int) -> torch.Tensor | None:
    """(B, h, w): channel ``unit`` of ``layer`` over ``images`` (B, 3, H, W) (token layers: the
    patch tokens on their grid); None for a layer without positions (a vector)."""
    with model.evaluating(), Tap(model, [layer]) as tap, torch.inference_mode():
        act = tap(images.to(model.device))[layer]
    return act[:, unit].cpu() if act.dim() == 4 else None


def activation_maps(run: str | os.PathLike | Run, layer: str | None = None, unit: int = 0, k: int | None = None, *,
                    model: str | Model | torch.nn.Module | None = None, raw: bool = False,
                    bottom: bool = False) -> torch.Tensor:
    """The activation map of ``unit`` over each of its top ``k`` images of an index, best first.

    Args:
        run: an indexed run folder (or :class:`~synthviz.dataset.Run`).
        layer: an indexed layer (default the first); it must have positions (conv map or tokens).
        k: how many of the top examples (default all the index kept).
        model: the network (default the one the index was made with).
        raw: return the maps themselves instead of overlays.
        bottom: the lowest examples instead of the top ones.

    Returns:
        (k, 3, size, size) in [0, 1]: each image as the pass saw it with the unit's map (min-max
        scaled per image, upsampled) laid over it in red; with ``raw``, the maps (k, h, w).
    """
    run = open_run(run)
    layer = run.check_layer(layer)
    examples = run.top_examples(layer, unit, k, bottom=bottom)
    if len(run.manifest["layers"][layer]["shape"]) < 2:
        raise SynthvizError(f"layer '{layer}' has no positions (one value per channel): it has no activation map; "
                            "pick a conv or token layer")
    m = load_model(model if model is not None else run.model, run.settings["weights"])
    if not examples:
        return torch.empty(0, 3, run.size, run.size)
    images = torch.stack([run.image(e.index) for e in examples])
    maps = unit_maps(m, layer, images, unit)
    if maps is None:
        raise SynthvizError(f"layer '{layer}' has no spatial map; pick a conv or token layer")
    return maps if raw else torch.stack([overlay(im, a) for im, a in zip(images, maps)])
