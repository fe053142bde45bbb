"""Localisation against a ground-truth mask: does the map point at the object?

* **Pointing game** (Zhang et al. 2016): a hit when the map's maximum lies inside the mask (within
  ``tolerance`` pixels of it).
* **IoU**: the map min-max normalised and thresholded at ``threshold`` (a fraction of its range),
  intersected with the mask, over their union (Grad-CAM's localisation against segmentation masks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _masks(masks: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Masks (B, 1, H', W') or (B, H', W') of any type -> booleans (B, 1, H, W) at the maps' size."""
    m = masks.float()
    if m.dim() == 3:
        m = m[:, None]
    if m.shape[1] != 1:
        m = m.amax(1, keepdim=True)
    if m.shape[-2:] != like.shape[-2:]:
        m = F.interpolate(m, size=like.shape[-2:], mode="nearest")
    return m.to(like.device) > 0.5


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """(B,) booleans: is the maximum of each map (B, 1, H, W) inside its mask (grown by ``tolerance`` px)?"""
    m = _masks(masks, maps)
    if tolerance > 0:
        k = 2 * tolerance + 1
        m = F.max_pool2d(m.float(), k, stride=1, padding=tolerance) > 0.5
    flat = maps.flatten(1)
    top = flat.argmax(1)
    return m.flatten(1).gather(1, top[:, None])[:, 0]


def iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(B,) intersection over union of ``map ≥ min + threshold·(max − min)`` with the mask."""
    m = _masks(masks, maps).flatten(1)
    flat = maps.flatten(1).float()
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    on = flat >= lo + threshold * (hi - lo)
    inter = (on & m).sum(1).float()
    union = (on | m).sum(1).float().clamp(min=1)
    return inter / union
