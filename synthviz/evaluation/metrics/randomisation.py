"""Randomisation: a map that explains the model must change when the model (or the class) does.

Quantus 0.6's randomisation family. Layers are re-initialised as Quantus does (every module with
``reset_parameters``, in ``named_modules`` order, top down or bottom up, ``torch.manual_seed(seed
+ 1)`` before each), on a private copy: the user's model is never touched, and the global random
state is restored afterwards. This walk is Quantus's, kept for its numbers; synthviz's own check
(``synthviz sanity``, :mod:`synthviz.evaluation.randomization`) walks the model's blocks with
:func:`synthviz.randomize.cascade`. The maps of the randomised models come from ``explain`` (a
method name, run through synthviz's batched attribution, or ``fn(model, images, classes) -> maps``).

Quantus 0.6 bugs not copied: ``return_average_correlation`` skips a layer named ``"orig"`` while
the entry is named ``"original"``, so its average includes the original map's self-similarity (≈ 1);
here the average is over the randomised layers only. ``SmoothMPRT`` explains with
``quantus.explain`` whatever ``explain_func`` is given; here with ``explain``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ...checks import choice
from ...errors import BadValue
from ...fusion import fingerprint
from ._common import prepared, spearman
from .registry import MetricData, register_metric
from .robustness import explained, second_moment


def randomised_models(model, order: str = "top_down", seed: int = 42) -> Iterator[tuple[str, object]]:
    """(layer name, the model with it randomised) for every module with ``reset_parameters``:
    ``"top_down"``/``"bottom_up"`` cascade (each step keeps the earlier ones), ``"independent"``
    randomises one at a time. Each step yields the same private copy, changed in place."""
    order = choice("layer_order", order, ("top_down", "bottom_up", "independent"))
    work = model.copy()
    work.fuse = False  # changed at every step: a fused twin would be rebuilt (a deep copy) each time
    original = {k: v.clone() for k, v in work.net.state_dict().items()} if order == "independent" else None
    layers = [(n, m) for n, m in work.net.named_modules() if hasattr(m, "reset_parameters")]
    if order == "top_down":
        layers = layers[::-1]
    cuda = [p.device.index or 0 for p in work.net.parameters() if p.is_cuda][:1]
    for name, module in layers:
        if original is not None:
            work.net.load_state_dict(original)
        with torch.random.fork_rng(devices=cuda):
            # torch.manual_seed(seed + 1), as Quantus, without its per-call overhead (~1 ms)
            torch.default_generator.manual_seed(seed + 1)
            if cuda:
                torch.cuda.manual_seed_all(seed + 1)
            module.reset_parameters()
        yield name, work


def fully_randomised(model, order: str = "top_down", seed: int = 42):
    """The last step of :func:`randomised_models` (every layer re-initialised in a cascade; the last
    layer alone for ``"independent"``). Kept on ``model`` per order and seed, so scoring batch after
    batch re-initialises once; made again when the network's weights or modules change."""
    memo = model.__dict__.setdefault("_randomised", {})
    now = fingerprint(model.net)
    kept = memo.get((order, seed))
    if kept is not None and now is not None and kept[0] == now:
        return kept[1]
    work = None
    for _, work in randomised_models(model, order, seed):
        pass
    if now is not None:
        memo[order, seed] = (now, work)
    return work


def _compare(data: MetricData, explain: Callable, similarity: Callable, order: str, seed: int, last_only: bool,
             average: bool) -> torch.Tensor:
    """Similarity of the given maps to ``explain(model)``'s for each randomised layer: the last
    layer's (B,), or their mean. Without ``average`` only the last step's map is drawn, whatever
    ``last_only`` (Quantus's ``skip_layers``) says: the steps before it would be discarded."""
    if average and last_only:
        raise BadValue("return_average_correlation needs every layer: set skip_layers=False")
    if not average:  # only the last step is drawn
        return similarity(explain(fully_randomised(data.model, order, seed)))
    values = [similarity(explain(model)) for _, model in randomised_models(data.model, order, seed)]
    return torch.stack(values, 1).mean(1)


def _flat_similarity(similarity_func, a: torch.Tensor) -> Callable:
    if callable(similarity_func):
        return lambda b: similarity_func(a.flatten(1), b.flatten(1))
    sim = {"spearman": spearman, "ssim": ssim}[choice("similarity_func", similarity_func, ("spearman", "ssim"))]
    return lambda b: sim(a.flatten(1), b.flatten(1))


@register_metric("mprt", family="randomisation", higher_is_better=False, needs=("model", "explain"), quantus="MPRT")
def mprt(data: MetricData, similarity_func="spearman", layer_order: str = "top_down", seed: int = 42,
         return_average_correlation: bool = False, skip_layers: bool = False, abs: bool = True,
         normalise: bool = True, batch_size: int = 64) -> torch.Tensor:
    """(B,) rank correlation of the map with ``explain``'s on the model with its layers
    re-initialised (Adebayo et al. 2018): with every layer randomised (the last step, Quantus's
    ``return_last_correlation``) or averaged over the steps (``return_average_correlation``)."""
    rows = torch.arange(len(data.images))
    sim = _flat_similarity(similarity_func, prepared(data.maps, abs, normalise))
    explain = lambda m: prepared(explained(data, data.images, rows, batch_size, m), abs, normalise)  # noqa: E731
    return _compare(data, explain, sim, layer_order, seed, skip_layers, return_average_correlation)


@register_metric("smooth_mprt", family="randomisation", higher_is_better=False, needs=("model", "explain"),
                 stochastic=True, quantus="SmoothMPRT")
def smooth_mprt(data: MetricData, similarity_func="spearman", layer_order: str = "bottom_up", seed: int = 42,
                nr_samples: int = 50, noise_magnitude: float = 0.1, return_average_correlation: bool = False,
                skip_layers: bool = False, abs: bool = True, normalise: bool = True,
                batch_size: int = 64) -> torch.Tensor:
    """(B,) :func:`mprt` with each randomised model's map averaged over ``nr_samples`` noisy copies
    (σ = ``noise_magnitude`` × the image's value range; the last copy noiseless), SmoothGrad-style
    (Hedström et al. 2023); ``normalise`` divides by the map's root mean square."""
    x = data.images
    b = len(x)
    spread = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1) * noise_magnitude
    gen = torch.Generator().manual_seed(seed)
    noise = [torch.randn(x.shape, generator=gen) * spread for _ in range(nr_samples - 1)] + [torch.zeros_like(x)]
    copies = torch.cat([x + e for e in noise])
    rows = torch.arange(b).repeat(nr_samples)

    def explain(model):
        maps = explained(data, copies, rows, batch_size, model)
        maps = maps.view(nr_samples, b, *maps.shape[1:]).mean(0)
        maps = second_moment(maps) if normalise else maps
        return maps.abs() if abs else maps

    given = second_moment(data.maps) if normalise else data.maps
    sim = _flat_similarity(similarity_func, given.abs() if abs else given)
    return _compare(data, explain, sim, layer_order, seed, skip_layers, return_average_correlation)


def discrete_entropy(maps: torch.Tensor, n_bins: int = 100) -> torch.Tensor:
    """(B,) entropy of the histogram (``n_bins`` bins over each map's range) of each map's values."""
    out = []
    for m in maps.flatten(1).double().numpy():
        counts = np.histogram(m, bins=n_bins)[0].astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        out.append(float(-(p * np.log(p)).sum()))
    return torch.tensor(out, dtype=torch.float64)


@register_metric("efficient_mprt", family="randomisation", higher_is_better=True, needs=("model", "explain"),
                 quantus="EfficientMPRT")
def efficient_mprt(data: MetricData, n_bins: int = 100, layer_order: str = "bottom_up", seed: int = 42,
                   abs: bool = False, normalise: bool = False, original: str = "explain",
                   batch_size: int = 64) -> torch.Tensor:
    """(B,) relative rise of the maps' complexity (histogram entropy, ``n_bins`` bins) from the
    model to the model with every layer re-initialised (Hedström et al. 2023): (H_rand − H) / H.
    ``original="explain"`` draws the model's maps with ``explain`` too (the given maps are not
    read, as in Quantus); ``"maps"`` takes the given maps as the model's, one explanation fewer:
    right when ``explain`` made them on this model, as in ``synthviz evaluate``."""
    rows = torch.arange(len(data.images))
    choice("original", original, ("explain", "maps"))

    def entropy(model) -> torch.Tensor:
        maps = data.maps if model is None else explained(data, data.images, rows, batch_size, model)
        return discrete_entropy(prepared(maps, abs, normalise), n_bins)

    before = entropy(None if original == "maps" else data.model)
    return (entropy(fully_randomised(data.model, layer_order, seed)) - before) / before


def ssim(a: torch.Tensor, b: torch.Tensor, win_size: int = 7) -> torch.Tensor:
    """(B,) SSIM of 1-D signals (B, N) as ``skimage.metrics.structural_similarity`` computes it on
    flattened maps (Quantus's ``ssim``): uniform window of 7, sample covariance, data range of the
    pair, borders cropped."""
    a, b = a.double()[:, None], b.double()[:, None]
    rng = (torch.maximum(a.amax((1, 2)), b.amax((1, 2))) - torch.minimum(a.amin((1, 2)), b.amin((1, 2))))
    c1, c2 = ((0.01 * rng) ** 2).view(-1, 1, 1), ((0.03 * rng) ** 2).view(-1, 1, 1)
    mean = lambda v: F.avg_pool1d(v, win_size, stride=1)  # noqa: E731  (valid windows = skimage's after cropping)
    ua, ub = mean(a), mean(b)
    norm = win_size / (win_size - 1)
    va, vb, vab = norm * (mean(a * a) - ua ** 2), norm * (mean(b * b) - ub ** 2), norm * (mean(a * b) - ua * ub)
    s = (2 * ua * ub + c1) * (2 * vab + c2) / ((ua ** 2 + ub ** 2 + c1) * (va + vb + c2))
    return s.flatten(1).mean(1)


@register_metric("random_logit", family="randomisation", higher_is_better=False, needs=("model", "explain"),
                 quantus="RandomLogit")
def random_logit(data: MetricData, similarity_func="ssim", num_classes: int | None = None, seed: int = 42,
                 abs: bool = False, normalise: bool = True, batch_size: int = 64) -> torch.Tensor:
    """(B,) similarity of the map to ``explain``'s map for another class, drawn uniformly among the
    ``num_classes`` (default: the model's output size) but the image's (Sixt et al. 2020), the
    draw Quantus's (``np.random.seed(seed)``, ``randint``)."""
    b = len(data.images)
    if data.classes is None:
        raise BadValue("random_logit explains another class: give class targets (indices or names)")
    k = num_classes or data.model.num_classes or int(data.model(data.images[:1].to(data.model.device)).shape[1])
    pick = np.random.RandomState(seed).randint(0, k - 1, b)
    others = [[c for c in range(k) if c != int(y)] for y in data.classes]
    off = torch.tensor([others[i][pick[i]] for i in range(b)])
    maps = explained(data, data.images, torch.arange(b), batch_size, classes=off)
    sim = _flat_similarity(similarity_func, prepared(data.maps, abs, normalise))
    return sim(prepared(maps, abs, normalise))
