"""Perturbation: occlusion (Zeiler & Fergus 2014), the score drop under a sliding window."""

from __future__ import annotations

import torch

from ..models import Model
from ..checks import in_range, positive
from .batching import forward_batch
from .core import Attribution, chunks, scores_of
from .registry import register_method


def _windows(side: int, window: int, stride: int) -> list[int]:
    """Window starts covering [0, side): a last window flush with the edge when the stride misses it."""
    window = min(window, side)
    starts = list(range(0, side - window + 1, stride))
    if starts[-1] != side - window:
        starts.append(side - window)
    return starts


@register_method("occlusion", label="occlusion", family="perturbation",
                 cost="1 + windows forwards (windows = (H/stride) × (W/stride))", lazy_target=True)
def occlusion(model: Model, x: torch.Tensor, targets: torch.Tensor, window: int = 32, stride: int = 16,
              value: float = 0.5, batch_size: int | None = None) -> Attribution:
    """Score drop f(x) − f(x with a window filled with ``value``), averaged over the windows covering
    each pixel: (B, 1, H, W), positive where hiding the pixels lowers the score. ``batch_size``
    occluded images per forward (None: :func:`~synthviz.attribution.batching.forward_batch`'s choice)."""
    positive("window", window, integer=True)
    positive("stride", stride, integer=True)
    in_range("value", value, 0.0, 1.0)  # the fill is a pixel value: images are in [0, 1]
    batch_size = forward_batch(model, x, batch_size)
    h, w = x.shape[-2:]
    win_h, win_w = min(window, h), min(window, w)
    spots = [(y0, x0) for y0 in _windows(h, window, stride) for x0 in _windows(w, window, stride)]
    jobs = [(bi, y0, x0) for bi in range(len(x)) for (y0, x0) in spots]
    total = torch.zeros(len(x), 1, h, w, device=x.device)
    count = torch.zeros(1, 1, h, w, device=x.device)
    for y0, x0 in spots:
        count[..., y0:y0 + win_h, x0:x0 + win_w] += 1
    with torch.no_grad():
        clean = scores_of(model, x, targets)  # the first forward is on x: a missing target is read here
        for s in chunks(len(jobs), batch_size):
            chunk = jobs[s]
            idx = torch.tensor([j[0] for j in chunk], device=x.device)
            batch = x[idx].clone()
            for row, (_, y0, x0) in enumerate(chunk):
                batch[row, :, y0:y0 + win_h, x0:x0 + win_w] = value
            drop = clean[idx] - scores_of(model, batch, targets[idx])
            for row, (bi, y0, x0) in enumerate(chunk):
                total[bi, :, y0:y0 + win_h, x0:x0 + win_w] += drop[row]
    maps = total / count
    return Attribution(maps, maps.clone(), display="positive", info={"windows": len(spots)}, scores=clean)
