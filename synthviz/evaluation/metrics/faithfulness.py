"""Faithfulness: does removing what the map calls relevant change the model's output accordingly?

Quantus 0.6's faithfulness family, plus RISE's deletion and insertion. Every perturbed copy of
every image of the batch goes through the network together, ``batch_size`` copies per forward.
*Features* are the map's values broadcast over colour, C·H·W per image, as in Quantus;
``perturb_baseline`` is Quantus's (``black`` = the image's minimum, ``white`` its maximum, ``mean``,
``uniform``, or a number, see :func:`._common.fills`). Region-based metrics (patches, superpixels,
ROAD) are in :mod:`.regions`.

Quantus 0.6 bugs not copied (the documented behaviour is implemented and tested instead):

* ``Monotonicity`` writes the baseline over the baseline at every step (``perturb_func`` replaces
  features *by the baseline*), so the curve is flat and every map scores 1 with a fixed baseline;
  here the image's features are revealed on the baseline, least relevant first.
* ``SensitivityN`` documents Ancona et al.'s test (random subsets of n features, correlation per
  image) but removes features in map order and correlates across the images of a batch; here
  subsets are sampled as documented and the correlation is averaged over n.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ...checks import choice
from ...errors import BadValue
from ._common import (
    base_scores,
    broadcast,
    check_steps,
    fills,
    outputs,
    pearson,
    perturbed,
    prepared,
    ranks,
    spearman,
    step_scores,
    trapezoid,
)
from .registry import MetricData, register_metric

SIMILARITIES: dict[str, Callable] = {"pearson": pearson, "spearman": spearman}


def _similarity(similarity_func) -> Callable:
    """A name (``"pearson"``, ``"spearman"``) or ``fn(a (B, S), b (B, S)) -> (B,)``."""
    if callable(similarity_func):
        return similarity_func
    return SIMILARITIES[choice("similarity_func", similarity_func, SIMILARITIES)]


def _features(data: MetricData, abs: bool, normalise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (B, N), maps (B, N)) as features."""
    return data.images.reshape(len(data.images), -1), broadcast(prepared(data.maps, abs, normalise), data.images)


def _group_curve(data: MetricData, x: torch.Tensor, groups: torch.Tensor, fill: torch.Tensor, n_steps: int,
                 cumulative: bool, softmax: bool, batch_size: int) -> torch.Tensor:
    """(B, S) scores with group k replaced (or groups 0..k, ``cumulative``) at step k."""
    shape = data.images.shape[1:]
    return step_scores(data, n_steps, lambda s: perturbed(x, groups, fill, s, cumulative).view(len(x), len(s), *shape),
                       softmax, batch_size)


def _subset_runs(data: MetricData, x: torch.Tensor, a: torch.Tensor, subset_size: int, nr_runs: int, kind,
                 softmax: bool, batch_size: int, gen: np.random.Generator, y: torch.Tensor):
    """``nr_runs`` random subsets of ``subset_size`` features per image replaced by the baseline:
    (attribution sums (B, R), output drops (B, R))."""
    b, n = x.shape
    if not 0 < subset_size < n:
        raise BadValue(f"subset_size must be in 1..{n - 1} (the features per image), not {subset_size}")
    idx = torch.from_numpy(np.stack([np.stack([gen.choice(n, subset_size, replace=False) for _ in range(b)])
                                     for _ in range(nr_runs)], 1))  # (B, R, k)
    fill = fills(kind, x, None, nr_runs, False, gen)

    def make(steps):
        copies = x[:, None].repeat(1, len(steps), 1)
        copies.scatter_(2, idx[:, steps], fill[:, steps, None].expand(-1, -1, subset_size).contiguous())
        return copies.view(b, len(steps), *data.images.shape[1:])

    drops = y[:, None] - step_scores(data, nr_runs, make, softmax, batch_size)
    sums = a.gather(1, idx.flatten(1)).view(b, nr_runs, subset_size).double().sum(2)
    return sums, drops


@register_metric("faithfulness_correlation", family="faithfulness", higher_is_better=True, needs=("model",),
                 stochastic=True, quantus="FaithfulnessCorrelation")
def faithfulness_correlation(data: MetricData, similarity_func="pearson", nr_runs: int = 100,
                             subset_size: int = 224, perturb_baseline="black", abs: bool = False,
                             normalise: bool = True, softmax: bool = False, seed: int = 0,
                             batch_size: int = 64) -> torch.Tensor:
    """(B,) correlation, over ``nr_runs`` random subsets of ``subset_size`` features, between the
    subset's summed relevance and the target's drop when the subset is replaced (Bhatt et al. 2020)."""
    x, a = _features(data, abs, normalise)
    y = base_scores(data, softmax, batch_size)
    sums, drops = _subset_runs(data, x, a, subset_size, nr_runs, perturb_baseline, softmax, batch_size,
                               np.random.default_rng(seed), y)
    return _similarity(similarity_func)(sums, drops)


@register_metric("faithfulness_estimate", family="faithfulness", higher_is_better=True, needs=("model",),
                 quantus="FaithfulnessEstimate")
def faithfulness_estimate(data: MetricData, similarity_func="pearson", features_in_step: int = 1,
                          perturb_baseline="black", abs: bool = False, normalise: bool = True,
                          softmax: bool = False, batch_size: int = 64) -> torch.Tensor:
    """(B,) correlation, over groups of ``features_in_step`` features taken most relevant first, of
    each group's summed relevance with the target's drop when that group alone is replaced
    (Alvarez-Melis & Jaakkola 2018)."""
    f = check_steps(features_in_step, data.images)
    x, a = _features(data, abs, normalise)
    groups = ranks(a) // f
    n_steps = math.ceil(x.shape[1] / f)
    fill = fills(perturb_baseline, x, groups, n_steps, False, np.random.default_rng(0))
    drops = base_scores(data, softmax, batch_size)[:, None] - _group_curve(
        data, x, groups, fill, n_steps, False, softmax, batch_size)
    sums = torch.zeros(len(x), n_steps, dtype=torch.float64).scatter_add_(1, groups, a.double())
    return _similarity(similarity_func)(sums, drops)


@register_metric("monotonicity", family="faithfulness", higher_is_better=True, needs=("model",),
                 quantus="Monotonicity")
def monotonicity(data: MetricData, features_in_step: int = 1, perturb_baseline="black", abs: bool = True,
                 normalise: bool = True, softmax: bool = True, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(B,) 1 when the target's score never falls as the image's features are revealed on the
    baseline, ``features_in_step`` at a time, least relevant first (Arya et al. 2019), else 0.
    (Quantus 0.6 never reveals them: see the module's notes.)"""
    f = check_steps(features_in_step, data.images)
    x, a = _features(data, abs, normalise)
    groups = ranks(a, descending=False) // f
    n_steps = math.ceil(x.shape[1] / f)
    canvas = fills(perturb_baseline, x, groups, 1, False, np.random.default_rng(seed))[:, :1].expand(-1, n_steps)
    # copy j hides the groups g with n - g <= j: copy 0 shows every group, copy n - 1 group 0 only
    hidden = n_steps - groups
    curve = _group_curve(data, x, hidden, canvas.contiguous(), n_steps, True, softmax, batch_size).flip(1)
    return (curve.diff(dim=1) >= 0).all(1).double()


@register_metric("monotonicity_correlation", family="faithfulness", higher_is_better=True, needs=("model",),
                 stochastic=True, quantus="MonotonicityCorrelation")
def monotonicity_correlation(data: MetricData, similarity_func="spearman", eps: float = 1e-5,
                             nr_samples: int = 100, features_in_step: int = 1, perturb_baseline="uniform",
                             abs: bool = True, normalise: bool = True, softmax: bool = True, seed: int = 0,
                             batch_size: int = 64) -> torch.Tensor:
    """(B,) rank correlation between each group's summed relevance (groups of ``features_in_step``,
    least relevant first) and the mean squared change of the target, relative to its value, when
    that group alone is replaced, over ``nr_samples`` draws of the baseline (Nguyen & Martínez 2020)."""
    f = check_steps(features_in_step, data.images)
    x, a = _features(data, abs, normalise)
    groups = ranks(a, descending=False) // f
    n_steps = math.ceil(x.shape[1] / f)
    y = base_scores(data, softmax, batch_size)
    fill = fills(perturb_baseline, x, groups, n_steps * nr_samples, False, np.random.default_rng(seed))
    shape = data.images.shape[1:]

    def make(copies):  # copy v: group v // nr_samples replaced by draw v
        hit = groups[:, None, :] == (copies // nr_samples).view(1, -1, 1)
        return torch.where(hit, fill[:, copies, None], x[:, None, :]).view(len(x), len(copies), *shape)

    out = step_scores(data, n_steps * nr_samples, make, softmax, batch_size).view(len(x), n_steps, nr_samples)
    inv = torch.where(y.abs() >= eps, 1 / y.abs().clamp(min=1e-300), torch.ones_like(y)).double() ** 2
    change = ((out.double() - y.double()[:, None, None]) ** 2).mean(2) * inv[:, None]
    sums = torch.zeros(len(x), n_steps, dtype=torch.float64).scatter_add_(1, groups, a.double())
    return _similarity(similarity_func)(sums, change)


@register_metric("pixel_flipping", family="faithfulness", higher_is_better=False, needs=("model",),
                 quantus="PixelFlipping")
def pixel_flipping(data: MetricData, features_in_step: int = 1, perturb_baseline="black", abs: bool = False,
                   normalise: bool = True, softmax: bool = True, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(B,) area (unit steps) under the target's score as features are replaced by the baseline,
    ``features_in_step`` at a time, most relevant first (Bach et al. 2015); Quantus's
    ``return_auc_per_sample``."""
    f = check_steps(features_in_step, data.images)
    x, a = _features(data, abs, normalise)
    groups = ranks(a) // f
    n_steps = math.ceil(x.shape[1] / f)
    fill = fills(perturb_baseline, x, groups, n_steps, True, np.random.default_rng(seed))
    return trapezoid(_group_curve(data, x, groups, fill, n_steps, True, softmax, batch_size))


@register_metric("sensitivity_n", family="faithfulness", higher_is_better=True, needs=("model",),
                 stochastic=True, quantus="SensitivityN")
def sensitivity_n(data: MetricData, similarity_func="pearson", n_max_percentage: float = 0.8,
                  features_in_step: int = 1, nr_samples: int = 100, perturb_baseline="black", abs: bool = False,
                  normalise: bool = True, softmax: bool = True, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(B,) Sensitivity-n (Ancona et al. 2018) averaged over n = f, 2f, ... up to ``n_max_percentage``
    of the features (f = ``features_in_step``): for each n, the correlation over ``nr_samples``
    random subsets of n features between their summed relevance and the target's drop when they
    are replaced. Costs (number of n) × ``nr_samples`` forward passes per image."""
    f = check_steps(features_in_step, data.images)
    x, a = _features(data, abs, normalise)
    sizes = [f * k for k in range(1, int(n_max_percentage * x.shape[1]) // f + 1) if f * k < x.shape[1]]
    if not sizes:
        raise BadValue(f"n_max_percentage={n_max_percentage} leaves no subset size: raise it or lower features_in_step")
    y = base_scores(data, softmax, batch_size)
    gen = np.random.default_rng(seed)
    sim = _similarity(similarity_func)
    per_n = [sim(*_subset_runs(data, x, a, n, nr_samples, perturb_baseline, softmax, batch_size, gen, y))
             for n in sizes]
    return torch.stack(per_n, 1).nanmean(1)


def _canvas(name: str, images: torch.Tensor) -> torch.Tensor | None:
    """RISE's canvases: ``black`` (zeros), ``blurred`` (None: the curves' own blur), ``mean`` (each
    image's mean colour)."""
    name = choice("canvas", name, ("black", "blurred", "mean"))
    if name == "black":
        return torch.zeros_like(images)
    return None if name == "blurred" else images.mean((2, 3), keepdim=True).expand_as(images)


def _rise(data: MetricData, mode: str, canvas: str, steps: int, batch_size: int, seed: int) -> torch.Tensor:
    from ..curves import auc as curve_auc, perturbation_curve

    if data.classes is None:
        raise BadValue(f"{mode} follows a class's probability: give class targets (indices or names)")
    maps = data.maps.mean(1, keepdim=True)
    curve = perturbation_curve(data.model, data.images, maps, data.classes, mode, steps=steps,
                               baseline=_canvas(canvas, data.images), batch_size=batch_size, seed=seed)
    return curve_auc(curve).double()


@register_metric("deletion", family="faithfulness", higher_is_better=False, needs=("model",))
def deletion(data: MetricData, canvas: str = "black", steps: int = 16, batch_size: int = 32,
             seed: int = 0) -> torch.Tensor:
    """(B,) area under the class probability as pixels go to the ``canvas``, most relevant first,
    in ``steps`` equal chunks (Petsiuk et al. 2018, RISE; its canvas: black). Not in Quantus."""
    return _rise(data, "deletion", canvas, steps, batch_size, seed)


@register_metric("insertion", family="faithfulness", higher_is_better=True, needs=("model",))
def insertion(data: MetricData, canvas: str = "blurred", steps: int = 16, batch_size: int = 32,
              seed: int = 0) -> torch.Tensor:
    """(B,) area under the class probability as pixels are revealed on the ``canvas``, most
    relevant first (RISE; its canvas: the image blurred). Not in Quantus."""
    return _rise(data, "insertion", canvas, steps, batch_size, seed)


@register_metric("sufficiency", family="faithfulness", higher_is_better=True, needs=("model",),
                 quantus="Sufficiency")
def sufficiency(data: MetricData, threshold: float = 0.6, distance_func: str = "seuclidean", abs: bool = True,
                normalise: bool = True, softmax: bool = True, batch_size: int = 64) -> torch.Tensor:
    """(B,) among the other images of the batch whose maps lie within ``threshold`` of this one's
    (``scipy`` ``cdist`` distances, divided by their largest), the share predicted as the same
    class (Dasgupta et al. 2022); 0 when none is that close. A batch-level metric: ``normalise``
    divides the whole batch by its largest |value|, as Quantus does."""
    from scipy.spatial.distance import cdist

    a = data.maps.reshape(len(data.maps), -1).double()
    if normalise and bool((a != 0).any()):
        a = a / a.abs().max()
    a = a.abs() if abs else a
    dist = cdist(a.numpy(), a.numpy(), distance_func)
    dist = dist / np.abs(dist).max() if np.any(dist != 0) else dist
    close = torch.from_numpy(dist <= threshold) & ~torch.eye(len(a), dtype=torch.bool)
    pred = outputs(data.model, data.images, softmax, batch_size).argmax(1)
    same = pred[None] == pred[:, None]
    n = close.sum(1).double()
    return torch.where(n > 0, (same & close).sum(1).double() / n.clamp(min=1), torch.zeros_like(n))
