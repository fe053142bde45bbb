"""Complexity: how concentrated a map is (Quantus 0.6's complexity family; no model needed).

* ``sparseness`` (Chalasani et al. 2020): the Gini index of the map's values; 1 = all relevance
  on one feature, 0 = flat. Higher is better.
* ``complexity`` (Bhatt et al. 2020): the entropy of the map's values taken as a distribution
  (each |value| over their sum). Lower is better.
* ``effective_complexity`` (Nguyen & Martínez 2020): the number of values above ``eps``. Lower is better.

Each reads the map as given, (1 or C)·H·W values per image, after Quantus's ``normalise`` (divide
by the largest |value|) and ``abs``.
"""

from __future__ import annotations

import torch

from ._common import prepared
from .registry import MetricData, register_metric


@register_metric("sparseness", family="complexity", higher_is_better=True, quantus="Sparseness")
def sparseness(data: MetricData, abs: bool = True, normalise: bool = True) -> torch.Tensor:
    """(B,) Gini index of each map: Σ (2i − n − 1)·a_(i) / (n·Σ a), values sorted ascending,
    each plus 1e-7 (Quantus's guard against an all-zero map)."""
    a = prepared(data.maps, abs, normalise).flatten(1).double() + 1e-7
    a = a.sort(1).values
    n = a.shape[1]
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return ((2 * i - n - 1) * a).sum(1) / (n * a.sum(1))


@register_metric("complexity", family="complexity", higher_is_better=False, quantus="Complexity")
def complexity(data: MetricData, abs: bool = True, normalise: bool = True) -> torch.Tensor:
    """(B,) entropy −Σ p·log(p + 1e-12) of p = a / Σ|a|."""
    a = prepared(data.maps, abs, normalise).flatten(1).double()
    p = a / a.abs().sum(1, keepdim=True)
    return -(p * torch.log(p + 1e-12)).sum(1)


@register_metric("effective_complexity", family="complexity", higher_is_better=False,
                 quantus="EffectiveComplexity")
def effective_complexity(data: MetricData, eps: float = 1e-5, abs: bool = True, normalise: bool = True) -> torch.Tensor:
    """(B,) how many values of each map exceed ``eps``."""
    a = prepared(data.maps, abs, normalise).flatten(1)
    return (a > eps).sum(1).double()
