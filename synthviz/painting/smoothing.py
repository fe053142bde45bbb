"""Feature smoothing for style statistics on any network (SWAG: Wang et al., CVPR 2021,
"Rethinking and improving the robustness of image style transfer").

Networks other than VGG have peaky, low-entropy activations and give weak Gatys style. SWAG
replaces each layer's features F by a softmax over all of its C·H·W entries, taken **per
image**, in both the style (Gram / moments) and the content losses. The softmax's values are
tiny (1 / C·H·W on average), which the paper makes up for with a huge style weight (1e17); here
the softmax is multiplied by C·H·W instead, so the smoothed features average 1 whatever the
layer's size: statistics stay comparable between a style image and an output of another size,
and every relative error (what ``style`` and ``texture`` minimise) is unchanged by the scale.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..checks import positive
from ..objectives import Context, Objective
from .options import check_choice

SMOOTHINGS = ("none", "softmax")
FeatureTransform = Callable[[torch.Tensor], torch.Tensor]


def softmax_features(act: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """SWAG's softmax transformation of one layer's features, per image.

    ``act`` (B, C, H, W) (or any (B, ...)) -> the same shape:
    ``C·H·W · softmax(act[b] / temperature)`` over all C·H·W entries of image b, i.e.
    ``exp(act / T) / mean(exp(act / T))`` per image (mean 1; each image on its own, never over the batch).
    A higher ``temperature`` smooths more (→ all ones); a lower one is peakier.
    """
    b = act.shape[0]
    flat = act.reshape(b, -1) / temperature
    return (flat.softmax(-1) * flat.shape[-1]).reshape(act.shape)


class SoftmaxFeatures(nn.Module):
    """:func:`softmax_features` as a module: (B, C, H, W) -> (B, C, H, W), mean 1 per image."""

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        self.temperature = positive("temperature", temperature)

    def forward(self, act: torch.Tensor) -> torch.Tensor:
        return softmax_features(act, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature:g}"


def feature_transform(smooth: str = "none", temperature: float = 1.0) -> FeatureTransform | None:
    """The transformation ``--smooth`` names: ``softmax`` -> :class:`SoftmaxFeatures`, ``none`` -> None."""
    check_choice("smooth", smooth, SMOOTHINGS)
    positive("temperature", temperature)
    return SoftmaxFeatures(temperature) if smooth == "softmax" else None


def smoothed(objective: Objective, transform: FeatureTransform | None) -> Objective:
    """``objective`` reading its layers through ``transform`` (None: ``objective`` itself). The
    forward pass is unchanged: only what the objective sees of its layers is transformed."""
    if transform is None:
        return objective

    def fn(c: Context) -> torch.Tensor:
        acts = dict(c.acts)
        for layer in objective.layers:
            acts[layer] = transform(acts[layer])
        return objective(Context(c.image, acts))

    return Objective(fn, f"smoothed({objective.name})", objective.layers)


def smooth_acts(acts: dict[str, torch.Tensor], transform: FeatureTransform | None) -> dict[str, torch.Tensor]:
    """Captured activations {layer: (B, C, H, W)} through ``transform`` (None: as they are)."""
    return acts if transform is None else {k: transform(v) for k, v in acts.items()}
