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
from dataclasses import dataclass

import torch

from ..callbacks import StepInfo
from ..device import seeded
from ..engine import render
from ..errors import SynthvizError
from ..evaluation._maps import label, method_names, overlay, relevance, spearman
from ..evaluation.fragility import (
    ATTACKS,
    DIFFERENTIABLE,
    center_of_mass,
    picked,
    topk_intersection,
)
from ..evaluation.smooth import BETA, SmoothActivations
from ..io import make_grid, quantize, as_image
from ..layers import LOGITS
from ..detection_models import task_of
from ..models import DEFAULT_MODEL, Model, ModelLike, load_model
from ..objectives import Objective
from ..params import PixelImage
from ..result import Result
from ..targets import Target, detection_target
from ..checks import positive
from ..cost import check_size
from .common import ImageLike
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
               progress: bool = False, target=None) -> Result:
    """Perturb ``image`` within an L∞ ``epsilon`` so that ``method``'s map moves while the label stays.

    A classifier's map explains its predicted class, which must stay predicted. A detector's
    explains a box target (``target``: ``targets.box(xyxy, K)``; default: the best detection scoring
    0.5 or more, of class ``target`` when it is a class), whose detection must stay found (score
    > 0) and whose score (IoU + confidence) a hinge keeps from falling below the photo's.

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
    positive("k", k, integer=True)
    fn = DIFFERENTIABLE.get(method_names(method)[0])  # aliases as everywhere ("ig", "grad-cam"...)
    make = ATTACKS.get(attack)
    if image is None:
        raise SynthvizError("no image given; pass an image path or a (1, 3, H, W) tensor")
    m = load_model(model, weights, device)
    if target is not None and task_of(m) != "detection":
        raise SynthvizError("the map attack on a classifier keeps its predicted class; a target (--class, "
                            "--box) is for a detector")
    # the photo and the photo at --size must reach the model's minimum: the file, its shape and the fix named
    x0 = quantize(as_image(image, size, min_side=m.min_size).to(m.device))
    check_size(m, min(x0.shape[-2:]))
    _check_k(k, x0[0, 0].numel())  # before the first map is computed
    target = _map_target(m, x0, fn.__name__.removesuffix("_map"), layer, k, target)
    objective = _objective(target, fn, make(target.m0.to(m.device), k=target.k), beta, layer,
                           f"{attack}({target.method})")
    param = PixelImage(1, *x0.shape[-2:], init=x0)
    param.lower, param.upper = grid_ball(x0, eps)
    best = _BestImage(target, attack, param, x0)
    result = render(m, objective, param, optimizer="sign", lr=lr or eps / 8, steps=steps, callbacks=[best], seed=seed,
                    progress=progress)
    if best.step < 0:
        warnings.warn("no step kept the label after 8-bit rounding: the result is the original image; "
                      "lower --lr or --epsilon", stacklevel=2)
    with seeded(seed):  # a random sign perturbation of the same budget, for comparison
        noise = eps * torch.sign(torch.randn(x0.shape)).to(x0)
    rnd = torch.maximum(torch.minimum(quantize(x0 + noise), param.upper), param.lower)
    return _attack_result(target, result, best, rnd, x0, attack=attack, eps=eps, beta=beta)


@dataclass
class _MapTarget:
    """The photo's class (a detector's box target) and ``method``'s map of it: what the attack moves
    and is measured against."""

    model: Model
    method: str  # gradient, grad_x_input, integrated_gradients or gradcam
    opts: dict
    cls: int | Target
    p0: torch.Tensor  # (classes,) the photo's probabilities; a box target: (1,) its score
    m0: torch.Tensor  # the photo's map
    k: int  # top-k size

    def map_of(self, x: torch.Tensor) -> torch.Tensor:
        """``method``'s map of ``x`` (1, 3, H, W) for the photo's class, on the real model."""
        return relevance(self.model, x, self.method, self.cls, **self.opts)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """(classes,) the probabilities of ``x`` (1, 3, H, W); a box target: (1,) its score."""
        with torch.no_grad():
            out = self.model(x)
            return self.cls(out) if isinstance(self.cls, Target) else out.softmax(-1)[0]

    def kept(self, p: torch.Tensor) -> bool:
        """The class is still predicted (a box target: its detection still found) on scores ``p``."""
        return bool(p[0] > 0) if isinstance(self.cls, Target) else int(p.argmax()) == self.cls

    def score(self, p: torch.Tensor) -> float:
        return float(p[0] if isinstance(self.cls, Target) else p[self.cls])

    @property
    def label(self) -> str:
        return self.cls.name if isinstance(self.cls, Target) else self.model.class_name(self.cls)


def _check_k(k: int | None, pixels: int) -> None:
    """The top-k size must leave pixels outside the top k: 1 <= k < ``pixels`` (None: the default)."""
    if k is not None and not 0 < k < pixels:
        raise SynthvizError(f"k must be between 1 and {pixels - 1} pixels, not {k}")


def _map_target(m: Model, x0: torch.Tensor, method: str, layer: str | None, k: int | None,
                target=None) -> _MapTarget:
    """The class predicted for ``x0`` (1, 3, H, W) (a detector: the box target), its map and the
    top-k size (default 2 % of the pixels)."""
    opts = {"layer": layer} if method == "gradcam" else {"steps": 16} if method == "integrated_gradients" else {}
    if task_of(m) == "detection":
        cls = detection_target(m, x0, target).for_batch(1)
        with torch.no_grad():
            p0 = cls(m(x0))
    else:
        with torch.no_grad():
            p0 = m(x0).softmax(-1)[0]
        cls = int(p0.argmax())
    m0 = relevance(m, x0, method, cls, **opts)
    k = k or max(1, round(0.02 * m0[0].numel()))
    _check_k(k, m0[0].numel())
    return _MapTarget(m, method, opts, cls, p0, m0, k)


def _objective(target: _MapTarget, fn, goal, beta: float, layer: str | None, name: str) -> Objective:
    """How far the smooth map moves (``goal``), minus a hinge that keeps the class ahead on the real logits."""
    m, cls = target.model, target.cls

    def objective_fn(ctx) -> torch.Tensor:
        logits = ctx[LOGITS]
        if isinstance(cls, Target):  # a detection: its score kept at least the photo's
            hinge = torch.relu(target.p0.to(ctx.image.device) - picked(logits, cls))
            with SmoothActivations(beta):
                smooth = fn(m, ctx.image, cls, layer=layer)
            return goal(smooth) - 10.0 * hinge
        others = logits.clone()
        others[:, cls] = -float("inf")
        hinge = torch.relu(others.amax(1) - logits[:, cls] + MARGIN)
        with SmoothActivations(beta):
            smooth = fn(m, ctx.image, cls, layer=layer)
        return goal(smooth) - 10.0 * hinge

    return Objective(objective_fn, name, [LOGITS])


class _BestImage:
    """A render callback keeping the 8-bit image whose real map moved furthest while the label stayed
    (``image`` (1, 3, H, W), ``score``, ``step``; step -1: none did, the image is the photo)."""

    def __init__(self, target: _MapTarget, attack: str, param: PixelImage, x0: torch.Tensor):
        self.target, self.attack, self.param = target, attack, param
        self.score, self.image, self.step = -float("inf"), x0, -1

    def __call__(self, info: StepInfo) -> bool:
        t = self.target
        q = torch.maximum(torch.minimum(quantize(info.param.image()), self.param.upper), self.param.lower)
        if not t.kept(t.scores(q)):
            return False
        score = _measure(self.attack, t.m0, t.map_of(q), t.k)
        if score > self.score:
            self.score, self.image, self.step = score, q.clone(), info.step
        return False


def _attack_result(target: _MapTarget, result: Result, best: _BestImage, rnd: torch.Tensor, x0: torch.Tensor, *,
                   attack: str, eps: float, beta: float) -> Result:
    """The attacked image, measured on the real model against the original map and beside the
    random perturbation ``rnd`` of the same budget."""
    m, cls, k, method, m0, p0, q = target.model, target.cls, target.k, target.method, target.m0, target.p0, best.image
    p1, pr = target.scores(q), target.scores(rnd)
    m1, mr = target.map_of(q), target.map_of(rnd)
    attacked, random_ = _stats(m0, m1, k), _stats(m0, mr, k)
    kept, boxed = target.kept(p1), isinstance(cls, Target)
    info = {"model": m.name, "method": method, "attack": attack, "epsilon": eps, "k": k, "beta": beta,
            "steps": result.steps, "best_step": best.step, "class": cls.name if boxed else cls, "label": target.label,
            "probability_before": target.score(p0), "probability_after": target.score(p1), "label_kept": kept,
            "linf": float((q - x0).abs().max()), "random": random_, "attacked": attacked,
            "random_label_kept": target.kept(pr)}
    before = (f"{target.label}: score {target.score(p0):.3f} -> {target.score(p1):.3f}" if boxed else
              f"{target.label} ({cls}) {float(p0[cls]):.1%} -> {float(p1[cls]):.1%}")
    info["report"] = (f"{before}"
                      f"{'' if kept else ' (LABEL CHANGED)'}; {label(method)} top-{k} intersection with the original "
                      f"map: random {random_['topk_intersection']:.2f}, attacked {attacked['topk_intersection']:.2f}; "
                      f"rank correlation: random {random_['rank_correlation']:+.2f}, attacked "
                      f"{attacked['rank_correlation']:+.2f} (L∞ {info['linf'] * 255:.3g}/255)")
    return Result(q.cpu(), history=result.history, objective=result.objective, steps=result.steps,
                  stopped=result.stopped, scores=torch.tensor([attacked["topk_intersection"]]),
                  labels=[target.label], figure=_figure(x0, q, m0, m1, method, k, attacked), info=info,
                  technique="attack_map")


def _figure(x0: torch.Tensor, q: torch.Tensor, m0: torch.Tensor, m1: torch.Tensor, method: str, k: int,
            attacked: dict) -> torch.Tensor:
    """Original and attacked photos (1, 3, H, W) each beside its map: one row of four."""
    photos = torch.cat([x0, q]).cpu()
    heat = overlay(photos, torch.cat([m0, m1]).cpu(), "positive" if method == "gradcam" else "abs")
    return make_grid(torch.cat([photos[:1], heat[:1], photos[1:], heat[1:]]),
                     ["original", f"{label(method)}", "attacked (8-bit)",
                      f"top-{k} kept {attacked['topk_intersection']:.0%}"], ncol=4)
