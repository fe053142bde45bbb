"""One forward pass of an indexing run: the :class:`~synthviz.layers.Tap` that reads the indexed
layers and a batch's reduced activations. The local pass (:mod:`.index`), the Ray workers
(:mod:`.distributed`) and single-image look-ups (:mod:`.neighbours`) all run it, so their numbers
are the same bits."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..layers import Tap
from ..models import Model
from .stats import reduce_positions


def index_tap(model: Model, names: Sequence[str]) -> Tap:
    """The :class:`Tap` of an indexing pass: raw outputs, so a token layer keeps its class token(s)
    as positions (B, N, C); use inside ``with``."""
    return Tap(model, names, spatial=False)


def forward_batch(model: Model, tap: Tap, images: torch.Tensor, reduce: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (values (B, C), positions (B, C))} for a batch (B, 3, H, W) in [0, 1], truncated
    forward through an :func:`index_tap`. Positions: ``y * W + x`` for maps, the token index
    (class tokens first) for token layers."""
    with torch.inference_mode():
        acts = tap(images.to(model.device, non_blocking=True))
        out = {}
        for name, a in acts.items():
            if a.dim() == 4 and model.channels_last is not None and model.channels_last(name):
                a = a.permute(0, 3, 1, 2)  # Swin's (B, H, W, C)
            out[name] = tuple(t.cpu() for t in reduce_positions(a, reduce))
        return out
