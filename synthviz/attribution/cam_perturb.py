"""Gradient-free CAMs that weigh each channel by what the network does without it: Score-CAM
(Wang et al. 2020) and Ablation-CAM (Desai & Ramaswamy 2020). Both take the CAM family's smoothings."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from ..layers import LOGITS, Tap
from ..models import Model
from .batching import forward_batch
from .cam import activation_features, run_cam
from .core import Attribution, chunks, progress, scores_of, target_scores
from .graph import tail
from .registry import register_method


def _scorecam_weights(model, x, targets, act, grad, layer, batch_size: int | None = None):
    """Each channel, upsampled (bilinear, corners aligned) and min-max scaled to [0, 1], masks the
    input towards the model's mean colour (pytorch-grad-cam masks the normalised input, whose zero is
    that colour); the target scores of the masked inputs, softmaxed over the channels, weigh A."""
    b, c = act.shape[:2]
    mean = model.mean.to(x)
    scores = torch.empty(b, c, device=x.device)
    batch_size = forward_batch(model, x, batch_size)
    with torch.no_grad(), progress(b * -(-c // batch_size), "Score-CAM") as advance:
        for i in range(b):
            for s in chunks(c, batch_size):
                advance()
                up = F.interpolate(act[i:i + 1, s], size=x.shape[-2:], mode="bilinear", align_corners=True)[0]
                lo = up.flatten(1).amin(1).view(-1, 1, 1)
                hi = up.flatten(1).amax(1).view(-1, 1, 1)
                masks = ((up - lo) / (hi - lo + 1e-8))[:, None]            # (n, 1, H, W); constant maps -> 0
                masked = mean + masks * (x[i:i + 1] - mean)
                scores[i, s] = scores_of(model, masked, targets[i:i + 1].repeat(len(masked)))
    return scores.softmax(1)[:, :, None, None] * act


@register_method("scorecam", label="Score-CAM", family="cam", cost="1 forward to the layer + channels forwards",
                 aliases=("score_cam",), needs_layer=True)
def scorecam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
             batch_size: int | None = None, aug_smooth: bool = False, eigen_smooth: bool = False) -> Attribution:
    """Score-CAM: w_k = softmax over channels of the target score on the input masked by the k-th
    normalised activation map; map = ReLU(Σ_k w_k A_k). One full forward per channel, ``batch_size``
    masked inputs at a time (None: :func:`~synthviz.attribution.batching.forward_batch`'s choice)."""
    return run_cam(model, x, targets, layer, partial(_scorecam_weights, batch_size=batch_size),
                   features=activation_features, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


def _outputs_from(model: Model, x1: torch.Tensor, layer: str, acts: torch.Tensor):
    """Outputs of the network for one image ``x1`` with ``layer``'s output replaced by each row of
    ``acts`` (n, C, h, w): the part after the layer alone when it can be cut out (torch.fx), else
    full forwards. Both run on the fused twin where there is one (a folded convolution's output
    mapped through its batch norm)."""
    net = model.runner(x1, [layer], unfold=True)
    rest = tail(net, layer)
    if rest is None:
        with Tap(model, [LOGITS], edit={layer: lambda _: acts}, unfold=True) as tap:
            return tap(x1.expand(len(acts), -1, -1, -1))[LOGITS]
    unfold = model.unfolds(net).get(layer)
    if unfold is not None:  # the twin's convolution outputs its batch norm's output
        acts = unfold.fused_output(acts)
    if net is not model.net and acts.dim() == 4:
        acts = acts.contiguous(memory_format=torch.channels_last)  # the twin's usual layout
    return rest(acts)


def _ablated_outputs(model: Model, x1: torch.Tensor, layer: str, act1: torch.Tensor, channels: slice):
    """Outputs of the network for one image with each channel of ``channels`` zeroed at ``layer``."""
    n = channels.stop - channels.start
    ablated = act1.expand(n, *act1.shape[1:]).clone()
    ablated[torch.arange(n), torch.arange(channels.start, channels.stop)] = 0
    return _outputs_from(model, x1, layer, ablated)


def _ablation_weights(model, x, targets, act, grad, layer, batch_size: int = 64):
    """w_k = (y − y_k) / y: the relative drop of the target score when channel k is zeroed."""
    b, c = act.shape[:2]
    drops = torch.empty(b, c, device=x.device)
    # a layer read back from the fused twin (A = (F − shift) / scale) is mapped forward again for
    # the ablations: y then comes the same way, so y − y_k carries no rounding of that round trip
    unfolded = layer in model.unfolds(model.runner(x, [layer], unfold=True))
    with torch.no_grad(), progress(b * -(-c // batch_size), "Ablation-CAM") as advance:
        clean = scores_of(model, x, targets)
        for i in range(b):
            if unfolded:
                clean[i] = target_scores(_outputs_from(model, x[i:i + 1], layer, act[i:i + 1]), targets[i:i + 1])
            for s in chunks(c, batch_size):
                advance()
                out = _ablated_outputs(model, x[i:i + 1], layer, act[i:i + 1], s)
                drops[i, s] = target_scores(out, targets[i:i + 1].repeat(len(out)))
    weights = (clean[:, None] - drops) / clean[:, None]
    return weights[:, :, None, None] * act


@register_method("ablationcam", label="Ablation-CAM", family="cam",
                 cost="1 forward + channels forwards of the layers after the layer", aliases=("ablation_cam",),
                 needs_layer=True)
def ablationcam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
                batch_size: int = 64, aug_smooth: bool = False, eigen_smooth: bool = False) -> Attribution:
    """Ablation-CAM: w_k = (y − y_k) / y, y_k the target score with channel k of the layer set to
    zero; map = ReLU(Σ_k w_k A_k). Only the network after the layer runs for the ablations when it
    can be cut there (torch.fx; a layer with a skip connection around it runs the whole network)."""
    return run_cam(model, x, targets, layer, partial(_ablation_weights, batch_size=batch_size),
                   features=activation_features, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


