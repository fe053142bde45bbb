"""Token layers as feature maps: the spatial view of a transformer's activations.

A ViT block outputs tokens (B, N, C): ``prefix`` class/distillation/register tokens, then the
patch tokens of an (h, w) grid in row-major order. Swin keeps (B, H, W, C). The spatial view is
(B, C, h, w) like a convolutional layer, so every objective (channel, neuron at x/y, DeepDream,
direction, Gram) and every CAM method works on transformers with no ``reshape_transform``::

    view = spatial_view(tokens, input_hw=(224, 224), prefix=1)   # (B, 197, 768) -> (B, 768, 14, 14)

:class:`synthviz.layers.Tap` hands objectives this view; ``Tap(..., spatial=False)`` gives the raw output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MAX_PREFIX = 8  # class + distillation + up to 6 register tokens when the model does not say


@dataclass(frozen=True)
class TokenGrid:
    """How a (B, N, C) token tensor maps to a grid: ``prefix`` leading tokens, then ``h`` x ``w`` patches."""

    prefix: int
    h: int
    w: int

    def describe(self) -> str:
        extra = f" + {self.prefix} class token{'s' if self.prefix > 1 else ''}" if self.prefix else ""
        return f"{self.h}×{self.w}{extra}"


def token_grid(n: int, input_hw: tuple[int, int], prefix: int | None = None) -> TokenGrid | None:
    """The grid of ``n`` tokens for an input of ``input_hw`` (H, W), or None if none fits.

    With ``prefix`` None, the prefix in 0..8 whose remainder forms the grid closest to the input's
    aspect ratio wins, the smallest on a tie (197 tokens at 224x224 -> 1 + 14x14)."""
    hh, ww = input_hw
    best, best_err = None, 0.25  # relative aspect-ratio error allowed (rounding of odd input sizes)
    for p in ([prefix] if prefix is not None else range(MAX_PREFIX + 1)):
        m = n - p
        if m <= 0:
            continue
        h = max(1, round(math.sqrt(m * hh / ww)))
        for gh in (h, h - 1, h + 1):
            if gh > 0 and m % gh == 0:
                err = abs((m // gh) / gh - ww / hh) / (ww / hh)
                if err < best_err - 1e-9:
                    best, best_err = TokenGrid(p, gh, m // gh), err
    return best


def spatial_view(act: torch.Tensor, input_hw: tuple[int, int], prefix: int | None = None,
                 channels_last: bool = False) -> torch.Tensor:
    """An activation as (B, C, h, w) when it is a token sequence or channels-last, else unchanged.

    (B, N, C) tokens -> drop the ``prefix`` tokens, patches to (B, C, h, w);
    (B, H, W, C) with ``channels_last`` -> (B, C, H, W). Differentiable (a reshape and a permute).
    """
    if act.dim() == 4 and channels_last:
        return act.permute(0, 3, 1, 2)
    if act.dim() != 3:
        return act
    grid = token_grid(act.shape[1], input_hw, prefix)
    if grid is None:
        return act
    b, _, c = act.shape
    return act[:, grid.prefix:].transpose(1, 2).reshape(b, c, grid.h, grid.w)


def spatial_view_and_back(act: torch.Tensor, input_hw: tuple[int, int], prefix: int | None = None,
                          channels_last: bool = False):
    """``(view, rebuild)``: the spatial view of ``act`` and ``rebuild(view, raw)``, which puts a
    (possibly modified) view back in the raw layout, taking the prefix tokens from ``raw``. Lets a
    hook hand the network a tensor computed *from* the view, so gradients reach the view itself."""
    view = spatial_view(act, input_hw, prefix, channels_last)
    if view is act:
        return view, lambda v, raw: v
    if act.dim() == 4:  # channels-last
        return view, lambda v, raw: v.permute(0, 2, 3, 1)
    p = act.shape[1] - view.shape[2] * view.shape[3]
    return view, lambda v, raw: torch.cat([raw[:, :p], v.flatten(2).transpose(1, 2)], 1)


def describe_shape(shape: tuple[int, ...], input_hw: tuple[int, int], prefix: int | None = None,
                   channels_last: bool = False) -> str:
    """``(197, 768)`` -> ``(197, 768) tokens (N, C): 14×14 + 1 class token``; other shapes as they are."""
    if len(shape) == 2:
        grid = token_grid(shape[0], input_hw, prefix)
        if grid is not None and (grid.h > 1 or grid.w > 1):
            return f"{tuple(shape)} tokens (N, C): {grid.describe()}"
    if len(shape) == 3 and channels_last:
        return f"{tuple(shape)} (H, W, C)"
    return str(tuple(shape))
