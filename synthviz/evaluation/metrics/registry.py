"""The metric registry and :func:`score`, the one Python entry to every metric.

A metric is one decorated function ``fn(data, **options) -> (B,)`` whose facts (family, direction,
what it needs) are given once in :func:`register_metric`; its options and their defaults are read
from its own signature (Quantus 0.6's names and defaults, in snake case)::

    @register_metric("sparseness", family="complexity", higher_is_better=True)
    def sparseness(data, abs=True, normalise=True):
        ...

    synthviz.evaluation.score(model, images, maps, targets, metric="sparseness")   # (B,)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import BadValue
from ...registry import Registry

FAMILIES = ("faithfulness", "robustness", "localisation", "complexity", "randomisation", "axiomatic")
NEEDS = ("model", "masks", "explain")


@dataclass(frozen=True)
class MetricInfo:
    """A registered metric and its facts.

    Attributes:
        name: the registered (Quantus, snake case) name. ``fn``: the function.
        family: one of :data:`FAMILIES`. ``higher_is_better``: the direction of a better map.
        needs: what beyond the maps it reads: ``"model"``, ``"masks"`` (ground truth),
            ``"explain"`` (it explains perturbed inputs or models again).
        stochastic: random draws (seeded by ``seed``): equal to Quantus within run-to-run spread.
        per_image: one value per image (False: one value per step over the batch, sensitivity_n).
        quantus: the Quantus 0.6 class it equals (None: not in Quantus).
        defaults: {option: default} read from ``fn``'s signature (never written twice).
    """

    name: str
    fn: Callable
    family: str
    higher_is_better: bool
    needs: tuple = ()
    stochastic: bool = False
    per_image: bool = True
    quantus: str | None = None
    defaults: dict = field(default_factory=dict)


METRICS: Registry = Registry("metric", "synthviz.evaluation.metrics.names() lists them")


def register_metric(name: str, *, family: str, higher_is_better: bool, needs: Sequence[str] = (),
                    stochastic: bool = False, per_image: bool = True, quantus: str | None = None) -> Callable:
    """Register ``fn(data: MetricData, **options) -> (B,)`` as metric ``name``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    if set(needs) - set(NEEDS):
        raise ValueError(f"needs must be among {NEEDS}, not {tuple(needs)}")

    def deco(fn: Callable) -> Callable:
        params = list(inspect.signature(fn).parameters.values())[1:]
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        METRICS.register(name)(MetricInfo(name, fn, family, higher_is_better, tuple(needs), stochastic,
                                          per_image, quantus, defaults))
        return fn

    return deco


def metric_info(name: str) -> MetricInfo:
    """The :class:`MetricInfo` of a metric (``"Pointing-Game"`` and ``"pointing_game"`` alike)."""
    return METRICS.get(name.strip().lower().replace("-", "_").replace(" ", "_"))


def names(family: str | None = None) -> list[str]:
    """Every registered metric, or those of one family."""
    return [n for n in METRICS if family is None or METRICS.get(n).family == family]


@dataclass
class MetricData:
    """What a metric reads, checked and on the CPU.

    Attributes:
        model: the :class:`~synthviz.models.Model` (None for metrics that need none).
        images: (B, C, H, W) float. ``maps``: (B, 1 or C, H, W) float32 relevance.
        target: a :class:`~synthviz.targets.Target` for the batch (None without a model).
        classes: (B,) long class per image when the target is one logit (else None).
        masks: (B, 1, H, W) bool ground truth (None when not given).
        explain: ``explain(model, images, classes) -> maps`` (None when not given).
    """

    model: object
    images: torch.Tensor
    maps: torch.Tensor
    target: object = None
    classes: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    explain: Callable | None = None


def score(model, images, maps, targets=None, *, metric: str, masks=None, **options) -> torch.Tensor:
    """One metric of the maps of ``images``: a (B,) float64 tensor, one value per image.

    Args:
        model: a model name, :class:`~synthviz.models.Model` or ``nn.Module`` (None for the
            complexity and localisation metrics, which read the maps and masks only).
        images: (B, C, H, W) tensor or array. ``maps``: (B, H, W), (B, 1, H, W) or (B, C, H, W).
        targets: class indices (an int, a list, a tensor, one per image or one for all), a
            :class:`~synthviz.targets.Target`, or None (the predicted class).
        metric: a registered name (:func:`names`); ``metric_info(name)`` gives its facts.
        masks: (B, H, W) or (B, 1, H, W) ground truth, for the localisation metrics.
        options: the metric's own (Quantus's names and defaults, e.g. ``abs``, ``normalise``,
            ``features_in_step``), plus ``explain`` for the metrics that explain again: a method
            name (``"gradient"``, run by synthviz's batched attribution with ``explain_options``)
            or ``fn(model, images, classes) -> maps``.
    """
    info = metric_info(metric)
    explain = options.pop("explain", None)
    explain_options = options.pop("explain_options", None) or {}
    unknown = sorted(set(options) - set(info.defaults))
    if unknown:
        raise BadValue(f"{info.name} takes no option {', '.join(unknown)}; its options are "
                       f"{', '.join(info.defaults) or 'none'}")
    data = _data(info, model, images, maps, targets, masks, explain, explain_options)
    out = info.fn(data, **options)
    return torch.as_tensor(np.asarray(out, dtype=np.float64) if not torch.is_tensor(out) else out).double()


def _data(info: MetricInfo, model, images, maps, targets, masks, explain, explain_options) -> MetricData:
    """Check and gather the inputs of a metric (one-line errors naming the fix)."""
    x = _images(images)
    a = _maps(maps, x)
    if "masks" in info.needs:
        if masks is None:
            raise BadValue(f"{info.name} compares the maps with ground truth: pass masks=(B, H, W) booleans")
        masks = _masks(masks, a)
    data = MetricData(None, x, a, masks=masks)
    if "model" in info.needs or "explain" in info.needs:
        if model is None:
            raise BadValue(f"{info.name} runs the model: pass a model (a name, a Model or an nn.Module)")
        from ...models import load_model

        data.model = load_model(model)
        data.target, data.classes = _targets(data.model, x, targets)
    if "explain" in info.needs:
        if explain is None:
            raise BadValue(f"{info.name} explains perturbed inputs again: pass explain='gradient' (a method "
                           "name) or explain=fn(model, images, classes) -> maps")
        data.explain = _explainer(explain, explain_options)
    return data


def _images(images) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images).detach().float().cpu()
    if x.dim() != 4:
        raise BadValue(f"images must be a batch (B, C, H, W), not shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise BadValue("images contain NaN or inf values; check how they were loaded")
    return x


def _maps(maps, x: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(np.asarray(maps) if not torch.is_tensor(maps) else maps).detach().float().cpu()
    if a.dim() == 3:
        a = a[:, None]
    if a.dim() != 4 or len(a) != len(x) or a.shape[-2:] != x.shape[-2:] or a.shape[1] not in (1, x.shape[1]):
        raise BadValue(f"maps of shape {tuple(a.shape)} do not fit images {tuple(x.shape)}: give one map per "
                       "image at the images' size, (B, H, W), (B, 1, H, W) or (B, C, H, W)")
    if not torch.isfinite(a).all():
        raise BadValue("maps contain NaN or inf values; check the attribution method's output")
    return a


def _masks(masks, a: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(masks) if not torch.is_tensor(masks) else masks).detach().cpu()
    if m.dim() == 3:
        m = m[:, None]
    if m.dim() != 4 or len(m) != len(a) or m.shape[-2:] != a.shape[-2:]:
        raise BadValue(f"masks of shape {tuple(m.shape)} do not fit the maps {tuple(a.shape)}: give one "
                       "(H, W) mask per image at the maps' size")
    return (m.float().amax(1, keepdim=True) > 0.5) if m.dtype != torch.bool else m.any(1, keepdim=True)


def _targets(model, x: torch.Tensor, targets):
    """Any target spelling -> (a Target for the batch, (B,) long classes or None when the target
    is not one logit per image). One forward of the images fixes a predicted class."""
    from ...targets import as_target

    if isinstance(targets, np.ndarray):
        targets = torch.as_tensor(targets)
    target = as_target(targets, model).for_batch(len(x))
    if target.pending:  # the predicted class: one forward reads it (given classes need none)
        with torch.no_grad():
            target(model(x.to(model.device)))
    if target.classes is None:
        return target, None
    return target, torch.as_tensor(target.classes[torch.arange(len(x))]).long().cpu()


def _explainer(explain, options: dict) -> Callable:
    """A method name or a callable -> ``fn(model, images, classes) -> (B, 1 or C, H, W)`` float CPU maps."""
    if callable(explain):
        def call(model, x, classes):
            out = explain(model, x, classes)
            return (out if torch.is_tensor(out) else torch.as_tensor(np.asarray(out))).detach().float().cpu()

        return call
    from ...attribution import attribute, method_names

    method = method_names(explain)[0]

    def run(model, x, classes):
        return attribute(model, x.to(model.device), method, classes.tolist(), **options).maps.float().cpu()

    return run
