"""Axiomatic: properties an attribution should have by construction (Quantus 0.6's axiomatic family).

Quantus 0.6 differences: ``NonSensitivity`` compares a per-step vector with a per-feature one,
so it fails unless ``features_in_step=1``; here a group of features counts as unattributed when
all its values are below ``eps`` (the same for one feature per group). ``InputInvariance`` folds
the shift into the first module's bias with one value per channel, wrong at the borders of a
padded convolution; here :func:`synthviz.evaluation.invariance.shifted_model` also pads with the
shifted value (the same for a convolution without padding); and Quantus shifts every value of the
image but the first (``perturb_batch`` passes ``indices[i][1:]``), so even the plain gradient
fails its test there; here the whole image is shifted.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._common import base_scores, broadcast, check_steps, fills, perturbed, prepared, scores, step_scores
from .registry import MetricData, register_metric
from .robustness import explained


@register_metric("completeness", family="axiomatic", higher_is_better=True, needs=("model",),
                 quantus="Completeness")
def completeness(data: MetricData, output_func=None, perturb_baseline="black", atol: float = 0.0,
                 abs: bool = False, normalise: bool = True, softmax: bool = False,
                 batch_size: int = 64) -> torch.Tensor:
    """(B,) 1 when the map sums to the target's change from the baseline image to the image,
    ``output_func(f(x) − f(x̄))`` (identity by default), within ``atol`` (Quantus: exact
    equality, ``atol=0``; integrated gradients' completeness, Sundararajan et al. 2017), else 0."""
    x = data.images.reshape(len(data.images), -1)
    a = prepared(data.maps, abs, normalise).flatten(1).double()
    canvas = fills(perturb_baseline, x, None, 1, False, np.random.default_rng(0))
    base = canvas[:, :1].expand_as(x).reshape(data.images.shape)
    b = len(x)
    both = scores(data, torch.cat([data.images, base]), torch.arange(b).repeat(2), softmax, batch_size)  # one pass
    change = (both[:b] - both[b:]).double()
    change = output_func(change) if output_func is not None else change
    return ((a.sum(1) - change).abs() <= atol).double()


@register_metric("non_sensitivity", family="axiomatic", higher_is_better=False, needs=("model",),
                 quantus="NonSensitivity")
def non_sensitivity(data: MetricData, eps: float = 1e-5, features_in_step: int = 1, perturb_baseline="black",
                    abs: bool = True, normalise: bool = True, softmax: bool = True,
                    batch_size: int = 64) -> torch.Tensor:
    """(B,) how many groups of ``features_in_step`` consecutive features disagree between "the map
    gives them (almost) no relevance" (all < ``eps``) and "replacing them by the baseline leaves
    the target within ``eps``" (Nguyen & Martínez 2020): the size of the symmetric difference."""
    f = check_steps(features_in_step, data.images)
    x = data.images.reshape(len(data.images), -1)
    a = broadcast(prepared(data.maps, abs, normalise), data.images)
    n_steps = math.ceil(x.shape[1] / f)
    groups = (torch.arange(x.shape[1]) // f).expand_as(x).contiguous()
    fill = fills(perturb_baseline, x, groups, n_steps, False, np.random.default_rng(0))
    shape = data.images.shape[1:]
    curve = step_scores(data, n_steps, lambda s: perturbed(x, groups, fill, s, False).view(len(x), len(s), *shape),
                        softmax, batch_size)
    insensitive = (curve - base_scores(data, softmax, batch_size)[:, None]).abs() < eps
    unattributed = (a < eps).view(len(x), n_steps, f).all(2)
    return (insensitive ^ unattributed).sum(1).double()


@register_metric("input_invariance", family="axiomatic", higher_is_better=True, needs=("model", "explain"),
                 quantus="InputInvariance")
def input_invariance(data: MetricData, input_shift: float = -1.0, abs: bool = False, normalise: bool = False,
                     batch_size: int = 64) -> torch.Tensor:
    """(B,) 1 when ``explain``'s map of x + ``input_shift`` on a copy of the model compensated for
    the shift equals the given map (``isclose``, atol 1e-4), else 0 (Kindermans et al. 2017)."""
    from ..invariance import shifted_model

    x = data.images
    other = shifted_model(data.model, input_shift, x)
    shifted = prepared(explained(data, x + input_shift, torch.arange(len(x)), batch_size, other), abs, normalise)
    given = prepared(data.maps, abs, normalise)
    return torch.isclose(given.expand_as(shifted), shifted, rtol=1e-5, atol=1e-4).flatten(1).all(1).double()
