"""The fragility attack on saliency maps (Ghorbani et al., AAAI 2019) as an engine recipe.

Sign steps on the pixels (``PixelImage`` inside the L∞ ball of ``epsilon``, shrunk to the 8-bit
grid, as in :mod:`~synthviz.techniques.fool`) maximise an objective that moves the map
(:data:`synthviz.evaluation.fragility.ATTACKS`: top-k, centre of mass, target region). The map in the
objective is computed with every ReLU/ReLU6 replaced by a softplus_β (a torch-function mode: the
model is never touched), since a ReLU network's gradient map has zero derivative; a hinge on the real
model's logits keeps the label. After every step the 8-bit image is classified by the real model
and its real map measured; the best 8-bit image that keeps the label is the result.
"""

from __future__ import annotations

import warnings

import torch

from ..callbacks import StepInfo
from ..engine import render, seeded
from ..errors import SynthvizError
from ..evaluation._maps import label, method_names, overlay, relevance, spearman
from ..evaluation.fragility import (
    ATTACKS,
    DIFFERENTIABLE,
    center_of_mass,
    topk_intersection,
)
from ..evaluation.smooth import BETA, SmoothActivations
from ..io import make_grid, quantize
from ..layers import LOGITS
from ..models import DEFAULT_MODEL, ModelLike
from ..objectives import Objective
from ..params import PixelImage
from ..result import Result
from .common import ImageLike, get_image, get_model, positive
from .fool import grid_ball, parse_epsilon
from .registry import register_technique

MARGIN = 2.0  # logits: the hinge keeps the class this far ahead of the runner-up


def _measure(attack: str, m0: torch.Tensor, m: torch.Tensor, k: int) -> float:
    """How far the map moved, larger = further: 1 − top-k intersection, the centre shift in pixels,
    or the share of relevance moved into the region (as the objective)."""
    if attack == "topk":
        return 1.0 - float(topk_intersection(m0, m, k)[0])
    if attack == "center":
        return float((center_of_mass(m) - center_of_mass(m0)).norm())
    return float(ATTACKS.get(attack)(m0)(m)[0])


def _stats(m0: torch.Tensor, m: torch.Tensor, k: int) -> dict:
    return {"topk_intersection": float(topk_intersection(m0, m, k)[0]), "rank_correlation": spearman(m0, m),
            "center_shift": float((center_of_mass(m) - center_of_mass(m0)).norm())}


@register_technique("attack_map", example={"image": "skimage:chelsea", "method": "gradcam", "size": 48, "steps": 1})
def attack_map(model: ModelLike = DEFAULT_MODEL, image: ImageLike | None = None,
               *, method: str = "gradient", attack: str = "topk", epsilon: float | str = "8/255", steps: int = 30,
               lr: float | None = None, k: int | None = None, beta: float = BETA, size: int | None = 224,
               layer: str | None = None, weights: str = "default", device: str | None = None, seed: int = 0,
               progress: bool = False) -> Result:
    """Perturb ``image`` within an L∞ ``epsilon`` so that ``method``'s map moves while the label stays.

    Args:
        method: ``gradient``, ``grad_x_input``, ``integrated_gradients`` or ``gradcam``.
        attack: ``topk`` (relevance out of the original top-k pixels), ``center`` (move the centre of
            mass) or ``region`` (relevance into the quarter opposite the original centre of mass).
        k: top-k size (default 2 % of the pixels: Ghorbani's 1000 of 224²).
        beta: softplus β of the smooth activations used for the attack's gradients.
        steps, lr: sign steps and their size (default ε/8).

    Returns:
        A :class:`~synthviz.result.Result`: ``images`` (1, 3, H, W) the attacked photo on the 8-bit grid
        (a PNG of it keeps the label), ``figure`` original and attacked photos with their maps, ``info``
        the labels and, for the attacked image and for a random sign perturbation of the same budget,
        ``topk_intersection``, ``rank_correlation`` (Spearman of |map|) and ``center_shift`` against
        the original map, measured on the real model.
    """
    eps = parse_epsilon(epsilon)
    if eps is None:
        raise SynthvizError("the map attack needs a budget; pass --epsilon, e.g. 8/255")
    positive("steps", steps)
    positive("beta", beta)
    fn = DIFFERENTIABLE.get(method_names(method)[0])  # aliases as everywhere ("ig", "grad-cam"...)
    make = ATTACKS.get(attack)
    if image is None:
        raise SynthvizError("no image given; pass an image path or a (1, 3, H, W) tensor")
    m = get_model(model, weights, device)
    x0 = quantize(get_image(image, size).to(m.device))
    m.check_size(min(x0.shape[-2:]))
    method = fn.__name__.removesuffix("_map")
    opts = {"layer": layer} if method == "gradcam" else {"steps": 16} if method == "integrated_gradients" else {}
    with torch.no_grad():
        p0 = m(x0).softmax(-1)[0]
    cls = int(p0.argmax())
    m0 = relevance(m, x0, method, cls, **opts)
    k = k or max(1, round(0.02 * m0[0].numel()))
    if not 0 < k < m0[0].numel():
        raise SynthvizError(f"k must be between 1 and {m0[0].numel() - 1} pixels, not {k}")
    goal = make(m0.to(m.device), k=k)

    def objective_fn(ctx) -> torch.Tensor:
        logits = ctx[LOGITS]
        others = logits.clone()
        others[:, cls] = -float("inf")
        hinge = torch.relu(others.amax(1) - logits[:, cls] + MARGIN)
        with SmoothActivations(beta):
            smooth = fn(m, ctx.image, cls, layer=layer)
        return goal(smooth) - 10.0 * hinge

    param = PixelImage(1, *x0.shape[-2:], init=x0)
    param.lower, param.upper = grid_ball(x0, eps)
    best = {"score": -float("inf"), "image": x0, "step": -1}

    def keep_best(info: StepInfo) -> bool:
        q = torch.maximum(torch.minimum(quantize(info.param.image()), param.upper), param.lower)
        with torch.no_grad():
            if int(m(q).argmax()) != cls:
                return False
        score = _measure(attack, m0, relevance(m, q, method, cls, **opts), k)
        if score > best["score"]:
            best.update(score=score, image=q.clone(), step=info.step)
        return False

    result = render(m, Objective(objective_fn, f"{attack}({method})", [LOGITS]), param, optimizer="sign",
                    lr=lr or eps / 8, steps=steps, callbacks=[keep_best], seed=seed, progress=progress)
    q = best["image"]
    if best["step"] < 0:
        warnings.warn("no step kept the label after 8-bit rounding: the result is the original image; "
                      "lower --lr or --epsilon", stacklevel=2)
    with seeded(seed):
        noise = eps * torch.sign(torch.randn(x0.shape)).to(x0)
    rnd = torch.maximum(torch.minimum(quantize(x0 + noise), param.upper), param.lower)
    with torch.no_grad():
        p1, pr = m(q).softmax(-1)[0], m(rnd).softmax(-1)[0]
    m1, mr = relevance(m, q, method, cls, **opts), relevance(m, rnd, method, cls, **opts)
    attacked, random_ = _stats(m0, m1, k), _stats(m0, mr, k)
    kept = int(p1.argmax()) == cls
    info = {"model": m.name, "method": method, "attack": attack, "epsilon": eps, "k": k, "beta": beta,
            "steps": result.steps, "best_step": best["step"], "class": cls, "label": m.class_name(cls),
            "probability_before": float(p0[cls]), "probability_after": float(p1[cls]), "label_kept": kept,
            "linf": float((q - x0).abs().max()), "random": random_, "attacked": attacked,
            "random_label_kept": int(pr.argmax()) == cls}
    info["report"] = (f"{m.class_name(cls)} ({cls}) {float(p0[cls]):.1%} -> {float(p1[cls]):.1%}"
                      f"{'' if kept else ' (LABEL CHANGED)'}; {label(method)} top-{k} intersection with the original "
                      f"map: random {random_['topk_intersection']:.2f}, attacked {attacked['topk_intersection']:.2f}; "
                      f"rank correlation: random {random_['rank_correlation']:+.2f}, attacked "
                      f"{attacked['rank_correlation']:+.2f} (L∞ {info['linf'] * 255:.3g}/255)")
    photos = torch.cat([x0, q]).cpu()
    heat = overlay(photos, torch.cat([m0, m1]).cpu(), "positive" if method == "gradcam" else "abs")
    figure = make_grid(torch.cat([photos[:1], heat[:1], photos[1:], heat[1:]]),
                       ["original", f"{label(method)}", "attacked (8-bit)",
                        f"top-{k} kept {attacked['topk_intersection']:.0%}"], ncol=4)
    return Result(q.cpu(), history=result.history, objective=result.objective, steps=result.steps,
                  stopped=result.stopped, scores=torch.tensor([attacked["topk_intersection"]]),
                  labels=[m.class_name(cls)], figure=figure, info=info, technique="attack_map")
