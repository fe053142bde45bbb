"""Heatmaps drawn over photos: the colour ramp, the per-image normalisation of a map and the
overlay itself, shared by the saliency figure, the sanity check, the attack maps and the
evaluation report."""

from __future__ import annotations

import torch

# A perceptually ordered "inferno"-like ramp (black -> purple -> red -> orange -> pale yellow).
_RAMP = torch.tensor([[0.00, 0.00, 0.02], [0.26, 0.04, 0.41], [0.58, 0.15, 0.40], [0.87, 0.32, 0.23],
                      [0.98, 0.60, 0.04], [0.99, 1.00, 0.64]])


def colormap(values: torch.Tensor) -> torch.Tensor:
    """(..., H, W) in [0, 1] -> (..., 3, H, W) RGB, linear interpolation along the ramp."""
    v = values.clamp(0, 1) * (len(_RAMP) - 1)
    lo = v.floor().long().clamp(max=len(_RAMP) - 2)
    t = (v - lo).unsqueeze(-1)
    ramp = _RAMP.to(values.device)
    rgb = ramp[lo] * (1 - t) + ramp[lo + 1] * t
    return rgb.movedim(-1, -3)


def normalize_map(maps: torch.Tensor, display: str = "abs", q: float = 0.99) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W) in [0, 1]: |map| (or its positive part), channels reduced by max,
    divided by the per-image ``q`` quantile so a few hot pixels do not wash out the rest."""
    m = maps.abs() if display == "abs" else maps.clamp(min=0)
    m = m.amax(1, keepdim=True)
    top = torch.quantile(m.flatten(1).float(), q, dim=1).clamp(min=1e-12)
    top = torch.where(top > 1e-12, top, m.flatten(1).amax(1).clamp(min=1e-12))
    return (m / top.view(-1, 1, 1, 1)).clamp(0, 1)


def overlay(photo: torch.Tensor, maps: torch.Tensor, display: str = "abs") -> torch.Tensor:
    """Heatmap over the photo: (B, 3, H, W) in [0, 1] and (B, C, H, W) maps -> (B, 3, H, W).
    Cold pixels show the (dimmed) photo, hot ones the colour ramp."""
    m = normalize_map(maps, display)
    heat = colormap(m[:, 0])
    alpha = 0.85 * m.sqrt()
    return ((1 - alpha) * 0.75 * photo.to(maps.device) + alpha * heat).clamp(0, 1)
