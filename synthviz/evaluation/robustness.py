"""Captum-style infidelity and max-sensitivity, and the Gini sparseness of a map (as in Quantus).

* **Infidelity** (Yeh et al. 2019): E over perturbations I ~ N(0, σ²) of (Iᵀ·Φ − (f(x) − f(x − I)))²,
  f the target logit, Φ the attribution (a 1-channel map counts for each colour). With
  ``normalize=True`` (Captum's option) Φ is first scaled by the β minimising the error, so the
  metric does not depend on a map's units. Lower is better.
* **Max-sensitivity** (Yeh et al. 2019): max over perturbations δ uniform in [−r, r] of
  ‖Φ(x + δ) − Φ(x)‖ / ‖Φ(x)‖. Lower is better.
* **Gini** (Chalasani et al. 2020): the Gini index of |Φ|; 1 = all relevance on one pixel, 0 = flat.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models import Model
from ._maps import resolve_targets


def gini(maps: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B,) Gini index of |maps| (0 for an all-zero map)."""
    a = maps.flatten(1).abs().double().sort(1).values
    n = a.shape[1]
    i = torch.arange(1, n + 1, dtype=torch.float64, device=a.device)
    total = a.sum(1)
    g = ((2 * i - n - 1) * a).sum(1) / (n * total.clamp(min=1e-300))
    return torch.where(total > 0, g, torch.zeros_like(g)).float()


@torch.no_grad()
def infidelity(model: Model, images: torch.Tensor, maps: torch.Tensor, targets=None,
               samples: int = 16, sigma: float = 0.003, normalize: bool = True, seed: int = 0) -> torch.Tensor:
    """(B,) infidelity of ``maps`` (B, 1 or 3, H, W) for the target scores of ``images`` (B, 3, H, W):
    ``targets`` is any target (a class's logit, a :class:`~synthviz.targets.Target`; None: the prediction).

    Perturbations I ~ N(0, ``sigma``²) per pixel value, ``samples`` per image; the same as
    ``captum.metrics.infidelity`` with that perturbation and ``normalize``."""
    gen = torch.Generator().manual_seed(seed)
    x = images.float().cpu()
    phi = maps.float().cpu().expand_as(x) if maps.shape[1] == 1 else maps.float().cpu()
    t = resolve_targets(model, x, targets, lazy=True)
    f0 = t(model(x.to(model.device))).cpu()  # the clean images: the prediction is read here
    dots, drops = [], []
    for _ in range(samples):
        noise = sigma * torch.randn(x.shape, generator=gen)
        fi = t(model((x - noise).to(model.device))).cpu()
        dots.append((noise * phi).flatten(1).sum(1).double())
        drops.append((f0 - fi).double())
    dot, drop = torch.stack(dots, 1), torch.stack(drops, 1)  # (B, S)
    if normalize:
        beta = (dot * drop).mean(1) / (dot * dot).mean(1).clamp(min=1e-300)
        dot = dot * beta[:, None]
    return ((dot - drop) ** 2).mean(1).float()


def max_sensitivity(explain: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, radius: float = 0.02,
                    samples: int = 4, seed: int = 0) -> torch.Tensor:
    """(B,) max over ``samples`` perturbations δ ~ U[−radius, radius] of ‖Φ(x+δ) − Φ(x)‖ / ‖Φ(x)‖.

    ``explain``: (B, 3, H, W) -> maps (B, C, H, W), e.g. ``lambda x: synthviz.saliency(model, x, method=m,
    target=t)`` with the target fixed (as Captum's ``sensitivity_max`` with the Frobenius norm)."""
    gen = torch.Generator().manual_seed(seed)
    x = images.float().cpu()
    base = explain(x).float().cpu()
    norm = base.flatten(1).norm(dim=1).clamp(min=1e-12)
    worst = torch.zeros(len(x))
    for _ in range(samples):
        delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * radius
        diff = (explain(x + delta).float().cpu() - base).flatten(1).norm(dim=1) / norm
        worst = torch.maximum(worst, diff)
    return worst
