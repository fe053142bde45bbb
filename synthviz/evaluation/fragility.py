"""The fragility of saliency maps (Ghorbani et al., AAAI 2019): a change within a small L∞ budget
that keeps the prediction can still move the map.

This module holds the parts the ``attack_map`` technique hands to the engine:

* :data:`DIFFERENTIABLE` — maps that stay differentiable in the image (``create_graph``), computed
  on the model under :class:`~synthviz.evaluation.smooth.SmoothActivations`;
* :data:`ATTACKS` — what "moving the map" means: ``topk`` (push relevance out of the original top-k
  pixels), ``center`` (move the map's centre of mass away) or ``region`` (pull relevance into a
  target box);
* the measures: :func:`topk_intersection` and :func:`center_of_mass`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..layers import LOGITS, Tap
from ..models import Model
from ..registry import Registry
from ..targets import Target

DIFFERENTIABLE: Registry[Callable[..., torch.Tensor]] = Registry(
    "attackable method", "use gradient, grad_x_input, integrated_gradients or gradcam")
ATTACKS: Registry[Callable[..., Callable[[torch.Tensor], torch.Tensor]]] = Registry(
    "attack objective", "use topk, center or region")


def picked(output, cls) -> torch.Tensor:
    """(B,) the score explained: class ``cls``'s logit, or a :class:`~synthviz.targets.Target`'s
    score when ``cls`` is one (a detector's box target on its list of per-image dicts)."""
    return cls(output) if isinstance(cls, Target) else output[:, cls]


def _score(model: Model, x: torch.Tensor, cls) -> torch.Tensor:
    return picked(model(x), cls).sum()


@DIFFERENTIABLE.register("gradient")
def gradient_map(model: Model, x: torch.Tensor, cls: int, **_) -> torch.Tensor:
    """max over colour of |∂score/∂x|, differentiable in x: (B, 1, H, W)."""
    (g,) = torch.autograd.grad(_score(model, x, cls), x, create_graph=True)
    return g.abs().amax(1, keepdim=True)


@DIFFERENTIABLE.register("grad_x_input")
def grad_x_input_map(model: Model, x: torch.Tensor, cls: int, **_) -> torch.Tensor:
    """|Σ_colour ∂score/∂x · x|: (B, 1, H, W)."""
    (g,) = torch.autograd.grad(_score(model, x, cls), x, create_graph=True)
    return (g * x).sum(1, keepdim=True).abs()


@DIFFERENTIABLE.register("integrated_gradients")
def integrated_gradients_map(model: Model, x: torch.Tensor, cls: int, steps: int = 8, **_) -> torch.Tensor:
    """|Σ_colour (x − 0) · mean gradient on the path from black|, midpoint rule: (B, 1, H, W)."""
    total = 0
    for k in range(steps):
        a = (k + 0.5) / steps
        (g,) = torch.autograd.grad(_score(model, a * x, cls), x, create_graph=True)
        total = total + g / a / steps  # ∂f(a·x)/∂x = a · ∇f(a·x)
    return (x * total).sum(1, keepdim=True).abs()


@DIFFERENTIABLE.register("gradcam")
def gradcam_map(model: Model, x: torch.Tensor, cls: int, layer: str | None = None, **_) -> torch.Tensor:
    """ReLU(Σ_k mean(∂score/∂A_k) A_k) upsampled to the image, differentiable in x: (B, 1, H, W)."""
    from ..layers import default_layer

    layer = layer or default_layer(model, "gradcam")
    with Tap(model, [layer, LOGITS], grad="through") as tap:  # the recorded layer on the path to the output
        acts = tap(x)
    act = acts[layer]
    (g,) = torch.autograd.grad(picked(acts[LOGITS], cls).sum(), act, create_graph=True)
    cam = (g.mean((2, 3), keepdim=True) * act).sum(1, keepdim=True)
    return torch.nn.functional.interpolate(torch.relu(cam), size=x.shape[-2:], mode="bilinear", align_corners=False)


def _normalised(m: torch.Tensor) -> torch.Tensor:
    flat = m.flatten(1)
    return flat / flat.sum(1, keepdim=True).clamp(min=1e-12)


def center_of_mass(maps: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) non-negative maps -> (B, 2) centre of mass (y, x) in pixels."""
    h, w = maps.shape[-2:]
    p = _normalised(maps).view(-1, h, w)
    ys = torch.arange(h, dtype=p.dtype, device=p.device)
    xs = torch.arange(w, dtype=p.dtype, device=p.device)
    return torch.stack([(p.sum(2) * ys).sum(1), (p.sum(1) * xs).sum(1)], 1)


def topk_mask(maps: torch.Tensor, k: int) -> torch.Tensor:
    """(B, H*W) booleans: each map's ``k`` largest pixels."""
    flat = maps.flatten(1)
    idx = flat.topk(k, dim=1).indices
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(1, idx, True)


def topk_intersection(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """(B,) the fraction of ``a``'s top-``k`` pixels that are also among ``b``'s top ``k``."""
    return (topk_mask(a, k) & topk_mask(b, k)).sum(1).float() / k


@ATTACKS.register("topk")
def topk_attack(original: torch.Tensor, k: int, **_) -> Callable[[torch.Tensor], torch.Tensor]:
    """Minus the share of relevance left on the original top-k pixels."""
    mask = topk_mask(original, k).float()
    return lambda m: -(_normalised(m) * mask.to(m)).sum(1)


@ATTACKS.register("center")
def center_attack(original: torch.Tensor, **_) -> Callable[[torch.Tensor], torch.Tensor]:
    """The distance of the map's centre of mass from the original's (pixels)."""
    c0 = center_of_mass(original)
    return lambda m: (center_of_mass(m) - c0.to(m)).norm(dim=1)


@ATTACKS.register("region")
def region_attack(original: torch.Tensor, region: tuple[float, float, float, float] | None = None,
                  **_) -> Callable[[torch.Tensor], torch.Tensor]:
    """The share of relevance inside ``region`` = (top, left, bottom, right) as fractions of the
    image (default: the quarter diagonally opposite the original centre of mass)."""
    h, w = original.shape[-2:]
    if region is None:
        cy, cx = center_of_mass(original)[0].tolist()
        top, left = (0.0 if cy >= h / 2 else 0.5), (0.0 if cx >= w / 2 else 0.5)
        region = (top, left, top + 0.5, left + 0.5)
    box = torch.zeros(h, w)
    box[round(region[0] * h):round(region[2] * h), round(region[1] * w):round(region[3] * w)] = 1
    return lambda m: (_normalised(m) * box.flatten().to(m)).sum(1)
