"""The one place where the evaluation package reaches into the attribution code.

Everything else in :mod:`synthviz.evaluation` calls these names, so a move of the saliency
methods (or of the randomization helpers, :mod:`synthviz.randomize`) is a change to this file only.
"""

from __future__ import annotations

import torch

from ..attribution import attribute, method_info, method_names, resolve_targets  # noqa: F401
from ..attribution.core import upsample  # noqa: F401  (the CAM family's upsampling)
from ..errors import SynthvizError
from ..models import Model
from ..overlay import overlay  # noqa: F401
from ..randomize import cascade, randomization_blocks, randomize, spearman  # noqa: F401


def relevance(model: Model, images: torch.Tensor, method: str, target=None, **options) -> torch.Tensor:
    """The map a method draws, as "relevance": (B, 1, H, W) float on the CPU, larger = more relevant.

    Methods whose heatmap shows |map| (gradient, SmoothGrad, grad×input, IG...) give |map|; those
    that show the positive part (Grad-CAM, occlusion) give the map as it is. NaN stays NaN: the
    caller reports it (:func:`synthviz.evaluation.checks.map_problem`)."""
    return relevance_and_grid(model, images, method, target, **options)[0]


def relevance_and_grid(model: Model, images: torch.Tensor, method: str, target=None,
                       **options) -> tuple[torch.Tensor, tuple[int, int]]:
    """:func:`relevance` and the method's native grid (h, w): the layer's resolution for the CAM
    family (``raw`` before upsampling), RISE's mask cells, else the image's (H, W)."""
    att = attribute(model, images, method, target, **options)
    maps = att.maps.float().cpu()
    if maps.shape[1] != 1:
        maps = maps.abs().amax(1, keepdim=True)
    grid = tuple(att.raw.shape[-2:]) if att.raw is not None and att.raw.dim() == 4 else tuple(maps.shape[-2:])
    if "grid" in att.info and grid == tuple(maps.shape[-2:]):  # RISE: cells of the random masks
        grid = (int(att.info["grid"]),) * 2
    return (maps.abs() if att.display == "abs" else maps), grid


def class_targets(model: Model, images: torch.Tensor, target) -> torch.Tensor:
    """(B,) long on the CPU: the class of each image of ``images`` (B, 3, H, W) whose probability is
    followed, from any spelling of a target that is one class per image (None: the prediction)."""
    return resolve_targets(model, images.to(model.device).float(), target).class_ids()


def followed(model: Model, images: torch.Tensor, target):
    """What deletion, insertion and ROAD follow on ``images`` (B, 3, H, W): (B,) long class ids on
    the CPU (their softmax probability, as :func:`class_targets`), or, for a target that is not one
    class per image (a detector's box, a text prompt), that :class:`~synthviz.targets.Target` bound
    to the B images (its score: a box target's IoU + confidence, 0 once the detection is lost)."""
    t = resolve_targets(model, images.to(model.device).float(), target)
    return t.class_ids() if t.is_class else t


def label(method: str) -> str:
    """A short display name of a method (``"Grad-CAM"``), or the name itself."""
    try:
        return method_info(method).label
    except SynthvizError:  # not an attribution method: the "random" reference row
        return method
