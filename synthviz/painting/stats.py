"""Style statistics (Gatys et al. 2015) and the layers they are read at.

Statistics are size-independent summaries of a layer's features: ``gram`` (G = F Fᵀ / HW) or
``moments`` (mean and covariance, which blend linearly and keep deep layers' means from swamping
their spread). Several style images blend by a weighted average of their statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import SynthvizError
from ..layers import LOGITS, Tap, capture, default_layer, get_layer
from ..models import Model
from ..objectives import Context, Objective, gram, gram_match, moments, moments_match
from .options import _floats, _normalised, as_list
from .smoothing import smooth_acts


def check_layer(model: Model, layer: str) -> str:
    """A real, spatial layer of the model (``get_layer`` names close matches when it is not)."""
    if layer == LOGITS:
        raise SynthvizError("'logits' has no spatial features; pick a convolutional layer (see `synthviz layers`)")
    get_layer(model, layer)
    return layer


def style_layers(model: Model, layers: str | Sequence[str] | None = None) -> list[str]:
    """The style layers: the given ones (list or ``"a,b,c"``) or the model's preset."""
    chosen = as_list(layers) or as_list(default_layer(model, "style"))
    return [check_layer(model, n) for n in dict.fromkeys(chosen)]


def content_layer(model: Model, layer: str | None = None, role: str = "content") -> str:
    """The given layer, else the model's preset for ``role`` when it has one (``style_content``:
    style transfer's own), else its ``content`` preset."""
    return check_layer(model, layer or default_layer(model, role if role in model.layers else "content"))


def layer_weights(weights: float | Sequence[float] | str | None, layers: Sequence[str]) -> list[float]:
    """Per-layer style weights normalised to sum 1 (default equal: each layer's error is relative)."""
    if weights is None:
        return [1.0 / len(layers)] * len(layers)
    values = _floats(weights, "layer weights")
    if len(values) != len(layers):
        raise SynthvizError(f"{len(values)} layer weight(s) for {len(layers)} style layer(s) ({', '.join(layers)}); "
                            "give one weight per layer")
    return _normalised(values, "layer weights")


StyleTargets = dict[str, tuple[torch.Tensor, ...]]


def stats_of(act: torch.Tensor, stat: str) -> tuple[torch.Tensor, ...]:
    """(1, C, H, W) -> (G,) for ``gram`` or (mean, cov) for ``moments``."""
    return (gram(act),) if stat == "gram" else moments(act)


def style_targets(model: Model, images: Sequence[torch.Tensor], weights: Sequence[float],
                  layers: Sequence[str], stat: str = "gram", transform=None) -> StyleTargets:
    """The blended statistics of ``images`` (each (1, 3, H, W), any size) at ``layers``; the
    features first go through ``transform`` ((B, C, H, W) -> same, e.g. SWAG's softmax) when given."""
    targets: StyleTargets = {}
    for image, w in zip(images, weights):
        acts = smooth_acts(capture(model, image, layers), transform)
        for layer in layers:
            s = [w * t for t in stats_of(acts[layer], stat)]
            targets[layer] = tuple(a + b for a, b in zip(targets[layer], s)) if layer in targets else tuple(s)
    return targets


def style_objective(targets: StyleTargets, weights: Sequence[float], stat: str = "gram") -> Objective:
    """Minus the weighted relative style error over the layers of ``targets`` (0 = a perfect match)."""
    make = gram_match if stat == "gram" else moments_match
    parts = [w * make(layer, *t) for (layer, t), w in zip(targets.items(), weights) if w > 0]
    total = sum(parts[1:], parts[0])
    return Objective(total.fn, f"style[{stat}]({', '.join(targets)})", total.layers)


@torch.no_grad()
def score(model: Model, objective: Objective, image: torch.Tensor) -> float:
    """The objective of one image (1, 3, H, W), no transforms, no gradient."""
    image = image.to(model.device)
    with torch.no_grad(), Tap(model, objective.layers) as tap:
        return float(objective(Context(image, tap(image) if objective.layers else {})).sum())
