"""Deletion and insertion (Petsiuk et al., RISE, 2018): does the map rank the pixels the model needs first?

*Deletion* replaces the pixels of an image by a baseline, most relevant first, in ``steps`` equal
chunks; the target's probability should fall fast (low area under the curve is good). *Insertion*
starts from the baseline and reveals the image's pixels, most relevant first; the probability should
rise fast (high area is good). The baseline is the image blurred (σ = side/10) for both, so neither
curve is driven by an out-of-range black canvas::

    curve = deletion_curve(model, images, maps, targets)   # (B, steps + 1) probabilities
    auc(curve)                                             # (B,)
"""

from __future__ import annotations

import torch

from ..models import Model
from ..targets import Target
from ._maps import followed


def blurred(images: torch.Tensor) -> torch.Tensor:
    """The images blurred with a Gaussian of σ = longer side / 10 (reflect border). (B, 3, H, W) -> same."""
    from kornia.filters import gaussian_blur2d

    sigma = max(images.shape[-2:]) / 10
    k = min(2 * int(3 * sigma) + 1, 2 * (min(images.shape[-2:]) // 2) - 1)
    return gaussian_blur2d(images, (k, k), (sigma, sigma), border_type="reflect")


def pixel_order(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Pixel indices most relevant first, (B, H*W). Ties are broken by a fixed random order (seeded),
    never by position, so a flat region is not removed top row first."""
    flat = maps.flatten(1).float()
    gen = torch.Generator().manual_seed(seed)
    tie = torch.rand(flat.shape[1], generator=gen).to(flat.device)
    # a lexicographic sort: by relevance, then by the random tie-breaker
    order = torch.argsort(tie.expand_as(flat), dim=1, descending=True)
    ranked = torch.gather(flat, 1, order)
    return torch.gather(order, 1, torch.argsort(ranked, dim=1, descending=True, stable=True))


def masks_in_order(maps: torch.Tensor, fractions: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(B, F, 1, H, W) boolean masks: for each fraction f, the ⌊f·H·W⌉ most relevant pixels."""
    b, _, h, w = maps.shape
    n = h * w
    rank = torch.empty(b, n, dtype=torch.long, device=maps.device)
    order = pixel_order(maps, seed)
    rank.scatter_(1, order, torch.arange(n, device=maps.device).expand(b, -1))
    counts = (fractions.to(maps.device) * n).round().long()
    return (rank[:, None, :] < counts[None, :, None]).view(b, len(fractions), 1, h, w)


def repeat_each(targets, k: int):
    """Each row of ``targets`` ((N,) class ids or a :class:`~synthviz.targets.Target`) ``k`` times in a row."""
    if isinstance(targets, Target):
        return targets[torch.arange(len(targets)).repeat_interleave(k)]
    return targets.repeat_interleave(k)


@torch.no_grad()
def probabilities(model: Model, images: torch.Tensor, targets, batch_size: int = 32) -> torch.Tensor:
    """Softmax probability of each image's class ``targets`` (N,) long, or the score of a target that
    is not one class (a :class:`~synthviz.targets.Target` of N rows: a detector's box target), (N,),
    in chunks of ``batch_size``."""
    out = []
    for s in range(0, len(images), batch_size):
        x = images[s:s + batch_size].to(model.device)
        if isinstance(targets, Target):
            out.append(targets[s:s + batch_size](model(x)).float().cpu())
            continue
        out.append(model(x).softmax(-1).gather(1, targets[s:s + batch_size, None].to(model.device))[:, 0].cpu())
    return torch.cat(out)


def perturbation_curve(model: Model, images: torch.Tensor, maps: torch.Tensor, targets=None,
                       mode: str = "deletion", steps: int = 16, baseline: torch.Tensor | None = None,
                       batch_size: int = 32, seed: int = 0) -> torch.Tensor:
    """The probability curve of deletion or insertion: (B, steps + 1), at 0, 1/steps, ..., 1 of the pixels.

    Args:
        images: (B, 3, H, W) in [0, 1]; maps: (B, 1, H, W) relevance (larger = more relevant).
        targets: the class whose probability is followed: any class target (an index, a name, (B,)
            indices, a :class:`~synthviz.targets.Target` of one class per image; None: the prediction);
            any other Target (a detector's box) is followed by its score.
        mode: ``"deletion"`` (image -> baseline) or ``"insertion"`` (baseline -> image).
        baseline: (B, 3, H, W); default the images blurred (:func:`blurred`).
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError("mode must be 'deletion' or 'insertion'")
    targets = followed(model, images, targets)
    images = images.float().cpu()
    base = blurred(images) if baseline is None else baseline.float().cpu().expand_as(images)
    fractions = torch.linspace(0, 1, steps + 1)
    masks = masks_in_order(maps.float().cpu(), fractions, seed)  # (B, S+1, 1, H, W)
    start, end = (images, base) if mode == "deletion" else (base, images)
    seq = torch.where(masks, end[:, None], start[:, None])  # (B, S+1, 3, H, W)
    probs = probabilities(model, seq.flatten(0, 1), repeat_each(targets, steps + 1), batch_size)
    return probs.view(len(images), steps + 1)


def deletion_curve(model: Model, images: torch.Tensor, maps: torch.Tensor, targets=None,
                   **kwargs) -> torch.Tensor:
    """(B, steps + 1) target probability as pixels are removed (blurred) most relevant first; low is good."""
    return perturbation_curve(model, images, maps, targets, "deletion", **kwargs)


def insertion_curve(model: Model, images: torch.Tensor, maps: torch.Tensor, targets=None,
                    **kwargs) -> torch.Tensor:
    """(B, steps + 1) target probability as pixels are revealed most relevant first; high is good."""
    return perturbation_curve(model, images, maps, targets, "insertion", **kwargs)


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Area under curves sampled evenly on [0, 1] (trapezoid rule): (B, S + 1) -> (B,)."""
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[-1] - 1), dim=-1)
