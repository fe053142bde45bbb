"""Transformer explanations from the attention weights (ViT, DeiT; torchvision or timm).

* ``rollout`` (Abnar & Zuidema 2020, with vit-explain's head fusion and discard ratio): the
  class token's row of Π_l (Â_l + I)/2, class-agnostic.
* ``chefer`` (Chefer, Gur & Wolf, ICCV 2021, "Generic Attention-model Explainability"): R = I,
  R ← R + Ā_l R with Ā_l = mean over heads of (∇A_l ⊙ A_l)⁺ for the target; class-specific.

The weights are captured by :func:`synthviz.attribution.attention.recording_attention` (fused kernels
included); maps are the patch grid (B, 1, h, w) bilinearly upsampled to the input's (H, W).
Neither is part of ``--methods all`` (a CNN has no attention): name them.
"""

from __future__ import annotations

import torch

from .attention import chefer_of, class_token_map, recording_attention, rollout_of
from ..models import Model
from .core import Attribution, target_scores, upsample
from .registry import register_method


def _normalised(maps: torch.Tensor) -> torch.Tensor:
    """Each image's map divided by its maximum (as vit-explain), (B, 1, H, W)."""
    top = maps.flatten(1).amax(1).clamp(min=1e-12)
    return maps / top.view(-1, 1, 1, 1)


@register_method("rollout", label="attention rollout", family="transformer",
                 cost="1 forward (no target, no backward)", aliases=("attention_rollout",), in_all=False)
def rollout(model: Model, x: torch.Tensor, targets, head_fusion: str = "mean",
            discard_ratio: float = 0.9) -> Attribution:
    """Attention rollout: per block fuse the heads (``mean``/``max``/``min``), zero the lowest
    ``discard_ratio`` of the weights (never the class token's own), Â = (A + I)/2 row-normalised,
    R = Â_L ··· Â_1; the map is the class token's row over the patches, divided by its maximum.
    raw: that row on the patch grid (B, 1, h, w). Class-agnostic: the target is not used."""
    with recording_attention(model.net) as record, torch.no_grad():
        scores = model(x)
    relevance = rollout_of(list(record), head_fusion, discard_ratio)
    raw = class_token_map(relevance, model.input_hw(x), model.prefix_tokens)
    maps = _normalised(upsample(raw, tuple(x.shape[-2:])))
    info = {"head_fusion": head_fusion, "discard_ratio": discard_ratio, "blocks": len(record)}
    del scores
    return Attribution(maps, raw, display="positive", info=info)


@register_method("chefer", label="Chefer relevance", family="transformer",
                 cost="1 forward + 1 backward to the attention weights",
                 aliases=("transformer_attribution", "gradient_rollout"), lazy_target=True, in_all=False)
def chefer(model: Model, x: torch.Tensor, targets) -> Attribution:
    """Chefer et al.'s gradient-weighted rollout: R = I; for each block Ā = mean over heads of
    (∂score/∂A ⊙ A)⁺ and R ← R + Ā R; the map is the class token's row over the patches.
    raw: that row on the patch grid (B, 1, h, w)."""
    with recording_attention(model.net) as record, torch.enable_grad():
        x = x.detach().requires_grad_(True)  # so the attention weights are part of a graph
        scores = target_scores(model(x), targets)
        attentions = list(record)
        grads = torch.autograd.grad(scores.sum(), attentions)
    relevance = chefer_of([a.detach() for a in attentions], list(grads))
    raw = class_token_map(relevance, model.input_hw(x), model.prefix_tokens)
    maps = upsample(raw, tuple(x.shape[-2:]))
    return Attribution(maps, raw, display="positive", info={"blocks": len(attentions)}, scores=scores.detach())
