"""The perceptual loss a style network is trained on: the very objectives the optimisation-based
``style`` optimises (relative content error at the content layer, relative Gram/moments error
at the style layers, total variation), so a network's output and an optimised image are judged
by the same numbers.

This module is the one place the fast-style package imports the style statistics from.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..layers import Tap, capture
from ..models import Model
from ..objectives import Context, Objective, feature_match
from ..regularizers import total_variation
from ..painting import (blend_weights, check_min_side, check_stat, content_layer, layer_weights, score, style_layers,
                        style_objective, style_targets)

__all__ = ["PerceptualLoss", "blend_weights", "check_min_side", "check_stat", "content_layer", "layer_weights", "score",
           "style_layers", "style_objective", "style_targets", "total_variation"]


class PerceptualLoss:
    """Content + style + TV loss of a batch of outputs, one style per batch element.

    Args:
        model: the frozen classifier whose features define the loss.
        styles: S style images, each (1, 3, H, W) (any size: statistics are size-independent).
        content_layer, style_layers, layer_weights: default to the model's presets, as in ``style``.
        stat: ``gram`` or ``moments``.

    ``terms(output, content, style_ids)``: output and content (B, 3, H, W), style_ids (B,) ->
    {"content", "style", "tv"}, each (B,) and >= 0 (relative errors, as ``style`` reports them).
    """

    def __init__(self, model: Model, styles: Sequence[torch.Tensor], *, content_layer_name: str | None = None,
                 style_layer_names: str | Sequence[str] | None = None,
                 weights: str | Sequence[float] | None = None, stat: str = "gram"):
        check_stat(stat)
        self.model = model
        self.style_layers = style_layers(model, style_layer_names)
        self.content_layer = content_layer(model, content_layer_name)
        lw = layer_weights(weights, self.style_layers)
        dev = model.device
        self.objectives: list[Objective] = [
            style_objective(style_targets(model, [s.to(dev)], [1.0], self.style_layers, stat), lw, stat) for s in styles]
        self.tv = total_variation(1.0)
        self.layers = list(dict.fromkeys([*self.style_layers, self.content_layer]))

    def content_targets(self, content: torch.Tensor) -> torch.Tensor:
        return capture(self.model, content, [self.content_layer])[self.content_layer]

    def terms(self, output: torch.Tensor, content: torch.Tensor, style_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        target = self.content_targets(content)
        with Tap(self.model, self.layers) as tap:
            ctx = Context(output, tap(output))
        content_err = -feature_match(self.content_layer, target)(ctx)
        per_style = torch.stack([-obj(ctx) for obj in self.objectives])  # (S, B)
        style_err = per_style.gather(0, style_ids.to(per_style.device)[None]).squeeze(0)
        tv = -self.tv(ctx)
        return {"content": content_err, "style": style_err, "tv": tv}

    def style_loss(self, image: torch.Tensor, style_id: int) -> float:
        """The style error of one image (1, 3, H, W) against style ``style_id``, as ``style`` reports it."""
        return -score(self.model, self.objectives[style_id], image)
