"""Localisation: does the map's relevance lie on the ground truth (masks (B, 1, H, W))?

Quantus 0.6's localisation family plus the energy-based pointing game (Wang et al. 2020, Score-CAM).
Every score is NaN for an image whose mask is empty, as in Quantus. Each reads the map as given
((1 or C)·H·W values; a 1-channel mask is repeated over a C-channel map) after ``normalise``
(divide by the largest |value|, which changes none of these scores) and ``abs``.

Two Quantus 0.6 bugs are not copied (the documented behaviour is): ``pointing_game(weighted=True)``
fails there (a float written into a boolean array), and ``attribution_localisation`` sizes the
image as ``x_batch[2:].size`` (the images from the third on), so its ``weighted`` score and its
``max_size`` check are wrong; here the ratio is mask pixels / (H·W).
"""

from __future__ import annotations

import torch

from ...errors import BadValue
from ._common import prepared, rank_average, ranks
from .registry import MetricData, register_metric


def _flat(data: MetricData, abs: bool, normalise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps (B, N) float64 after preprocessing, masks (B, N) bool at the maps' channels)."""
    a = prepared(data.maps, abs, normalise)
    m = data.masks.expand_as(a)
    return a.flatten(1).double(), m.reshape(len(a), -1)


def _nan_where_empty(values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return torch.where(masks.any(1), values.double(), torch.full_like(values.double(), float("nan")))


@register_metric("pointing_game", family="localisation", higher_is_better=True, needs=("masks",),
                 quantus="PointingGame")
def pointing_game(data: MetricData, weighted: bool = False, abs: bool = False, normalise: bool = True) -> torch.Tensor:
    """(B,) 1 when a maximum of the map (any of them, if tied) lies in the mask, else 0 (Zhang et
    al. 2018). ``weighted``: a hit scores 1 − mask area / map area (small objects count more)."""
    a, m = _flat(data, abs, normalise)
    top = a == a.amax(1, keepdim=True)
    hit = (top & m).any(1).double()
    if weighted:
        hit = hit * (1 - m.sum(1) / m.shape[1])
    return _nan_where_empty(hit, m)


@register_metric("attribution_localisation", family="localisation", higher_is_better=True, needs=("masks",),
                 quantus="AttributionLocalisation")
def attribution_localisation(data: MetricData, weighted: bool = False, max_size: float = 1.0,
                             positive_attributions: bool = False, abs: bool = True,
                             normalise: bool = True) -> torch.Tensor:
    """(B,) relevance inside the mask over all relevance (Kohlbrenner et al. 2020); NaN where the
    ratio exceeds 1 (negative relevance outside). ``positive_attributions``: negatives clipped
    first; ``weighted``: times the mask's share of the image; ``max_size``: masks larger than this
    share of the image are an error."""
    a, m = _flat(data, abs, normalise)
    if positive_attributions:
        a = a.clamp(min=0)
    share = data.masks.flatten(1).sum(1).double() / data.masks[0, 0].numel()
    if (share > max_size).any():
        raise BadValue(f"a mask covers {float(share.max()):.0%} of its image, more than max_size={max_size}")
    ratio = (a * m).sum(1) / (a.sum(1) + 1e-9)
    ratio = torch.where(ratio > 1, torch.full_like(ratio, float("nan")), ratio)
    return _nan_where_empty(ratio * share if weighted else ratio, m)


@register_metric("top_k_intersection", family="localisation", higher_is_better=True, needs=("masks",),
                 quantus="TopKIntersection")
def top_k_intersection(data: MetricData, k: int = 1000, concept_influence: bool = False, abs: bool = False,
                       normalise: bool = True) -> torch.Tensor:
    """(B,) share of the ``k`` most relevant values that lie in the mask (Theiner et al. 2021);
    ``concept_influence``: divided by the mask's share of the map."""
    a, m = _flat(data, abs, normalise)
    if not 0 < k <= a.shape[1]:
        raise BadValue(f"k must be in 1..{a.shape[1]} (the values per map), not {k}")
    score = (m & (ranks(a) < k)).sum(1).double() / k
    if concept_influence:
        score = score * m.shape[1] / m.sum(1)
    return _nan_where_empty(score, m)


@register_metric("relevance_rank_accuracy", family="localisation", higher_is_better=True, needs=("masks",),
                 quantus="RelevanceRankAccuracy")
def relevance_rank_accuracy(data: MetricData, abs: bool = False, normalise: bool = True) -> torch.Tensor:
    """(B,) share of the K most relevant values that lie in the mask, K = the mask's size (Arras et al. 2021)."""
    a, m = _flat(data, abs, normalise)
    k = m.sum(1, keepdim=True)
    inside = m & (ranks(a) < k)
    return _nan_where_empty(inside.sum(1) / k[:, 0].clamp(min=1), m)


@register_metric("relevance_mass_accuracy", family="localisation", higher_is_better=True, needs=("masks",),
                 quantus="RelevanceMassAccuracy")
def relevance_mass_accuracy(data: MetricData, abs: bool = False, normalise: bool = True) -> torch.Tensor:
    """(B,) relevance inside the mask over all relevance (Arras et al. 2021)."""
    a, m = _flat(data, abs, normalise)
    return _nan_where_empty((a * m).sum(1) / a.sum(1), m)


@register_metric("auc", family="localisation", higher_is_better=True, needs=("masks",), quantus="AUC")
def auc(data: MetricData, abs: bool = False, normalise: bool = True) -> torch.Tensor:
    """(B,) area under the ROC curve of the map's values as a detector of mask pixels (Fawcett
    2006): the chance that a mask value outranks an outside one, ties counting half (the
    Mann–Whitney statistic, equal to scikit-learn's ``roc_curve`` + ``auc``)."""
    a, m = _flat(data, abs, normalise)
    r = rank_average(a)
    pos = m.sum(1).double()
    neg = m.shape[1] - pos
    u = (r * m).sum(1) - pos * (pos + 1) / 2
    out = torch.where(neg > 0, u / (pos * neg).clamp(min=1), torch.full_like(u, float("nan")))
    return _nan_where_empty(out, m)


@register_metric("focus", family="localisation", higher_is_better=True, quantus="Focus")
def focus(data: MetricData, mosaic_labels=None, abs: bool = False, normalise: bool = True) -> torch.Tensor:
    """(B,) positive relevance in the quadrants of the target class over all positive relevance
    (Arias-Duart et al. 2022) for mosaics of four images; ``mosaic_labels``: (B, 4) 0/1 per
    quadrant (top-left, top-right, bottom-left, bottom-right), 1 where it shows the target class
    (Quantus's ``custom_batch``)."""
    if mosaic_labels is None:
        raise BadValue("focus scores mosaics: pass mosaic_labels=(B, 4) 0/1 per quadrant "
                       "(top-left, top-right, bottom-left, bottom-right)")
    labels = torch.as_tensor(mosaic_labels).double().view(len(data.maps), 4)
    a = prepared(data.maps, abs, normalise).double().clamp(min=0)
    h, w = a.shape[-2] // 2, a.shape[-1] // 2
    quad = torch.zeros(len(a), 1, *a.shape[-2:], dtype=torch.float64)
    for i, (ys, xs) in enumerate([(slice(0, h), slice(0, w)), (slice(0, h), slice(w, None)),
                                  (slice(h, None), slice(0, w)), (slice(h, None), slice(w, None))]):
        quad[:, :, ys, xs] = labels[:, i].view(-1, 1, 1, 1)
    return (quad * a).flatten(1).sum(1) / (a.flatten(1).sum(1) + 1e-9)


@register_metric("energy_pointing_game", family="localisation", higher_is_better=True, needs=("masks",))
def energy_pointing_game(data: MetricData, abs: bool = False, normalise: bool = True) -> torch.Tensor:
    """(B,) the map's energy inside the mask over its total energy, Σ_in a⁺ / Σ a⁺ (Wang et al.
    2020, Score-CAM, with the mask a bounding box); not in Quantus. 0 for an all-negative map."""
    a, m = _flat(data, abs, normalise)
    a = a.clamp(min=0)
    total = a.sum(1)
    inside = (a * m).sum(1)
    return _nan_where_empty(torch.where(total > 0, inside / total.clamp(min=1e-300), torch.zeros_like(total)), m)
