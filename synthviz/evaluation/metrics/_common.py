"""Shared parts of the metrics: map preparation, batched forward passes over perturbed copies,
feature rankings and the fill values of perturbed features, all as Quantus 0.6 defines them.

*Features* are the elements of the map broadcast to the image, (C·H·W) per image, as in Quantus:
a 1-channel map ranks the three colour values of a pixel together. Rankings use numpy's default
``argsort`` on float32, Quantus's own call, so ties fall the same way on both sides.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...checks import choice
from .registry import MetricData

BASELINES = ("black", "white", "mean", "uniform")


def prepared(maps: torch.Tensor, abs: bool, normalise: bool) -> torch.Tensor:
    """Quantus's preprocessing of maps (B, ...): each divided by its largest |value| (``normalise``;
    an all-zero map stays as it is), then |·| (``abs``). Quantus divides a whole batch by one
    maximum, so an image's score there depends on its batch; here every map is its own batch."""
    a = maps.float()
    if normalise:
        top = a.flatten(1).abs().amax(1).view(-1, *([1] * (a.dim() - 1)))
        a = torch.where(top > 0, a / torch.where(top > 0, top, torch.ones_like(top)), a)
    return a.abs() if abs else a


def broadcast(maps: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Maps (B, 1 or C, H, W) -> (B, C·H·W) features, each pixel's value repeated over colour."""
    return maps.expand_as(images).reshape(len(images), -1).contiguous()


def ranks(features: torch.Tensor, descending: bool = True) -> torch.Tensor:
    """(B, N) -> (B, N) long: each feature's place in the order (0 = first), most relevant first
    (``descending``) or least relevant first, ties ordered by numpy's argsort as in Quantus."""
    a = features.float().numpy()
    order = torch.from_numpy(np.argsort(-a if descending else a, axis=1))
    out = torch.empty_like(order)
    out.scatter_(1, order, torch.arange(a.shape[1]).expand_as(order).contiguous())
    return out


def fills(kind, x: torch.Tensor, groups: torch.Tensor, n_groups: int, cumulative: bool,
          gen: np.random.Generator | None = None, uniform=(0.0, 1.0)) -> torch.Tensor:
    """The value that replaces each group of features, (B, G), for Quantus's ``perturb_baseline``.

    ``x``: (B, N) features; ``groups``: (B, N) the group (perturbation step) of each feature,
    ``n_groups`` or more for features never perturbed. ``"black"``/``"white"``: the image's
    minimum/maximum; ``"mean"``: its mean, and when the steps accumulate (``cumulative``) the mean
    of the image as perturbed so far, as Quantus recomputes it before each step; ``"uniform"``: a
    new draw in ``uniform`` per image and step; a number: that value.
    """
    b = len(x)
    if not isinstance(kind, str):
        return torch.full((b, n_groups), float(kind))
    kind = choice("perturb_baseline", kind, BASELINES)
    if kind == "black":
        return x.amin(1, keepdim=True).expand(b, n_groups)
    if kind == "white":
        return x.amax(1, keepdim=True).expand(b, n_groups)
    if kind == "uniform":
        gen = gen if gen is not None else np.random.default_rng(0)
        return torch.from_numpy(gen.uniform(uniform[0], uniform[1], size=(n_groups, b)).T).float()
    if not cumulative:
        return x.mean(1, keepdim=True).expand(b, n_groups)
    return _drifting_mean(x, groups, n_groups)


def _drifting_mean(x: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """(B, G): the mean of each image just before group g is replaced by it, groups 0..g-1 having
    been replaced by their own means (a running sum, O(N + G))."""
    xd = x.double()
    n = xd.shape[1]
    g = groups.clamp(max=n_groups)
    counts = torch.zeros(len(x), n_groups + 1, dtype=torch.float64).scatter_add_(1, g, torch.ones_like(xd))
    sums = torch.zeros(len(x), n_groups + 1, dtype=torch.float64).scatter_add_(1, g, xd)
    total = xd.sum(1).numpy().copy()
    counts, sums = counts.numpy(), sums.numpy()
    out = np.empty((len(x), n_groups))
    for k in range(n_groups):
        out[:, k] = total / n
        total += out[:, k] * counts[:, k] - sums[:, k]
    return torch.from_numpy(out).float()


def perturbed(x: torch.Tensor, groups: torch.Tensor, fill: torch.Tensor, steps: torch.Tensor,
              cumulative: bool) -> torch.Tensor:
    """Copies of each image with groups replaced: (B, N) features, (B, N) groups, (B, G) fills and
    the step indices (S,) -> (B, S, N); step k replaces group k (or groups 0..k if ``cumulative``)."""
    value = fill.gather(1, groups.clamp(max=fill.shape[1] - 1))
    g = groups[:, None, :]
    k = steps.view(1, -1, 1)
    hit = g <= k if cumulative else g == k
    return torch.where(hit, value[:, None, :], x[:, None, :])


@torch.no_grad()
def outputs(model, x: torch.Tensor, softmax: bool, batch_size: int) -> torch.Tensor:
    """The model's outputs (N, K) for (N, C, H, W) inputs, ``batch_size`` at a time (softmax or logits)."""
    out = []
    for s in range(0, len(x), batch_size):
        y = model(x[s:s + batch_size].to(model.device)).float()
        out.append((y.softmax(-1) if softmax else y).cpu())
    return torch.cat(out)


@torch.no_grad()
def scores(data: MetricData, x: torch.Tensor, rows: torch.Tensor, softmax: bool, batch_size: int) -> torch.Tensor:
    """The target's score (N,) for copies (N, C, H, W) of the images ``rows`` (N,) stands for."""
    out = []
    for s in range(0, len(x), batch_size):
        y = data.model(x[s:s + batch_size].to(data.model.device)).float()
        y = y.softmax(-1) if softmax else y
        out.append(data.target[rows[s:s + batch_size]](y).float().cpu())
    return torch.cat(out)


def step_scores(data: MetricData, n_steps: int, make: Callable[[torch.Tensor], torch.Tensor],
                softmax: bool, batch_size: int) -> torch.Tensor:
    """(B, S) scores of S perturbed copies per image, all images' copies batched together.

    ``make(steps)``: the step indices (s,) -> copies (B, s, C, H, W); built a chunk at a time so
    at most about ``batch_size`` copies are in memory."""
    b = len(data.images)
    per = max(1, batch_size // b)
    cols = []
    for s in range(0, n_steps, per):
        steps = torch.arange(s, min(n_steps, s + per))
        x = make(steps).reshape(b * len(steps), *data.images.shape[1:])
        rows = torch.arange(b).repeat_interleave(len(steps))
        cols.append(scores(data, x, rows, softmax, batch_size).view(b, len(steps)))
    return torch.cat(cols, 1)


def base_scores(data: MetricData, softmax: bool, batch_size: int) -> torch.Tensor:
    """(B,) the target's score on the images themselves."""
    return scores(data, data.images, torch.arange(len(data.images)), softmax, batch_size)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of (B, S) and (B, S) -> (B,) (NaN for a constant row, as scipy)."""
    a, b = a.double() - a.double().mean(1, keepdim=True), b.double() - b.double().mean(1, keepdim=True)
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1) / den.clamp(min=1e-300), torch.full_like(den, float("nan")))


def rank_average(a: torch.Tensor) -> torch.Tensor:
    """Row-wise ranks with ties averaged (scipy's ``rankdata``), (B, S) -> (B, S) float64."""
    from scipy.stats import rankdata

    return torch.from_numpy(rankdata(a.double().numpy(), axis=1)).double()


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Spearman rank correlation (B, S), (B, S) -> (B,) (scipy's ``spearmanr`` per row)."""
    return pearson(rank_average(a), rank_average(b))


def trapezoid(curves: torch.Tensor) -> torch.Tensor:
    """Area under (B, S) curves with unit spacing (Quantus's ``calculate_auc``) -> (B,)."""
    return torch.trapezoid(curves.double(), dx=1.0, dim=1)


def check_steps(features_in_step: int, images: torch.Tensor) -> int:
    """``features_in_step`` must divide H·W (Quantus's own check)."""
    from ...errors import BadValue

    hw = images.shape[-2] * images.shape[-1]
    if int(features_in_step) < 1 or hw % int(features_in_step):
        raise BadValue(f"features_in_step must divide H·W = {hw} (e.g. {hw // 16}), not {features_in_step}")
    return int(features_in_step)
