"""Attribution: which pixels a network's answer depends on.

One calling convention for every method (Captum-like)::

    maps = synthviz.saliency("efficientnet_lite0", images, method="gradcam", target=285)   # (B, 1, H, W)
    att = synthviz.attribute(model, images, "integrated_gradients", steps=32)            # maps + raw + extras

Methods live in one module per family and register themselves with :func:`register_method`
(label, family, cost, aliases; default options from the function's own signature). "all" is
the registration order, families in the order of :data:`FAMILIES`; every other module of this
package (methods added later) is imported after them.
"""

from __future__ import annotations

import importlib
import pkgutil

import torch

from ..cost import check_size
from ..errors import SynthvizError
from ..io import as_image
from ..models import DEFAULT_MODEL, Model, load_model
from .core import REDUCTIONS, Attribution, read_prediction, resolve_targets, target_scores
from .registry import (METHODS, MethodInfo, call_method, check_options, method_info, method_names,
                       option_defaults, register_method)

FAMILIES = ("gradient", "guided", "cam", "cam_perturb", "fullgrad", "perturbation", "deeplift", "lrp",
            "sampling", "transformer")
_INTERNAL = {"core", "registry", "graph", "attention"}  # not method families


def _load_methods() -> None:
    present = {m.name for m in pkgutil.iter_modules(__path__)}
    for name in [f for f in FAMILIES if f in present] + sorted(present - set(FAMILIES) - _INTERNAL):
        importlib.import_module(f"{__name__}.{name}")


_load_methods()


def attribute(model: str | Model | torch.nn.Module, images: torch.Tensor, method: str = "gradient", target=None,
              **options) -> Attribution:
    """Run ``method`` on a batch (B, 3, H, W) in [0, 1] for ``target`` (None: the predicted class;
    an index, a name, one per image, or any :class:`~synthviz.targets.Target`). ``options``: the
    method's own keyword options (see ``method_info(name).defaults``) and the common ones
    (``layer``, ``batch_size``, ``seed``, ``reduce``); an option only other methods take is ignored,
    one no method takes is an error.
    The model is left exactly as it was (train/eval modes, ``requires_grad`` flags, no hooks)."""
    opts = check_options(options)
    reduce = opts.pop("reduce", None)
    if reduce is not None and reduce not in REDUCTIONS:
        raise SynthvizError(f"unknown reduce '{reduce}'; use {', '.join(REDUCTIONS)}")
    if int(opts.get("batch_size", 1)) < 1:
        raise SynthvizError(f"batch_size must be positive, not {opts['batch_size']}")
    names = method_names(method)
    if len(names) != 1:
        raise SynthvizError(f"give one method here, not {len(names)}; use the figure for several")
    info = METHODS.get(names[0])
    model = model if isinstance(model, Model) else load_model(model)
    x = images.to(model.device, torch.float32)
    check_size(model, min(x.shape[-2:]))
    with model.evaluating():
        targets = resolve_targets(model, x, target, lazy=info.lazy_target)
        att = call_method(info.name, model, x, targets, opts)
        read_prediction(model, x, targets)  # a method that never scored the images themselves
    if reduce is not None and att.raw.shape[1] == 3 and att.raw.shape[-2:] == x.shape[-2:]:
        att.maps = REDUCTIONS[reduce](att.raw)
        att.reduction = reduce
        if reduce in ("max", "abs"):
            att.display = "abs"
    att.maps, att.raw = att.maps.detach(), att.raw.detach()
    att.targets = targets.tolist()
    return att


def saliency(model: str | Model | torch.nn.Module = DEFAULT_MODEL, images=None, *, method: str = "gradient",
             target=None, size: int | None = None, weights: str = "default", device: str | None = None,
             **options) -> torch.Tensor:
    """Saliency maps of ``images`` (a (B, 3, H, W) tensor in [0, 1], a path, or a list of paths).

    Returns (B, 1, H, W) — the batch's shape with colour reduced — on the images' device
    (``reduce="none"``: (B, 3, H, W) signed attributions for the pixel-space methods). ``size``:
    the longer side images are resized to. Use :func:`attribute` for the raw maps, targets and
    method extras (IG completeness gap...).
    """
    if images is None:
        raise SynthvizError("no images given; pass a (B, 3, H, W) tensor in [0, 1] or an image path")
    m = load_model(model, weights=weights, device=device)
    x = as_image(images, size, batch=True)
    att = attribute(m, x, method, target, **options)
    return att.maps.to(images.device if isinstance(images, torch.Tensor) else "cpu")


__all__ = ["Attribution", "FAMILIES", "METHODS", "MethodInfo", "REDUCTIONS", "attribute", "method_info",
           "method_names", "option_defaults", "register_method", "resolve_targets", "saliency", "target_scores"]
