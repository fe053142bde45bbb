"""FullGrad (Srinivas & Fleuret 2019): the input-gradient term plus every layer's bias-gradient
term, each made positive, scaled per channel and summed (pytorch-grad-cam's FullGrad)."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import LOGITS, Tap
from ..models import Model
from .cam import augmentation_smoothing, first_component, minmax
from .core import Attribution, target_scores, upsample
from .registry import register_method


def bias_layers(model: Model) -> dict[str, torch.Tensor]:
    """{layer: its effective bias (C,)} for every Conv2d and BatchNorm2d with a bias (a batch
    norm's bias is β − μγ/√(σ² + ε), the constant it adds in eval mode)."""
    out = {}
    for name, m in model.net.named_modules():
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            out[name] = m.bias.detach()
        elif isinstance(m, nn.BatchNorm2d) and m.bias is not None:
            mean = m.running_mean if m.running_mean is not None else torch.zeros_like(m.bias)
            var = m.running_var if m.running_var is not None else torch.ones_like(m.bias)
            weight = m.weight if m.weight is not None else torch.ones_like(m.bias)
            out[name] = (m.bias - mean * weight / torch.sqrt(var + m.eps)).detach()
    return out


def _channel_minmax(t: torch.Tensor) -> torch.Tensor:
    """Min-max scaling of each (image, channel) map of (B, C, h, w) to [0, 1]."""
    flat = t.flatten(2)
    lo, hi = flat.amin(2)[..., None, None], flat.amax(2)[..., None, None]
    return (t - lo) / (hi - lo + 1e-7)


def _fullgrad(model: Model, x: torch.Tensor, targets: torch.Tensor, eigen_smooth: bool) -> Attribution:
    biases = bias_layers(model)
    x = x.detach().requires_grad_(True)
    with Tap(model, list(biases) + [LOGITS], grad="through") as tap, torch.enable_grad():
        acts = tap(x)
        scores = target_scores(acts[LOGITS], targets)
    names = [n for n in biases if n in acts]
    grads = torch.autograd.grad(scores.sum(), [x] + [acts[n] for n in names], allow_unused=True)
    size = x.shape[-2:]
    # each term: |·| scaled per channel to [0, 1], summed over channels (scaled before upsampling: cheaper)
    mean = model.mean.to(x)
    terms = [_channel_minmax((grads[0] * (x.detach() - mean)).abs())]  # gradient × (normalised input), per colour
    for name, g in zip(names, grads[1:]):
        if g is None or g.dim() != 4:
            continue
        terms.append(upsample(_channel_minmax((biases[name].view(1, -1, 1, 1) * g).abs()).sum(1, keepdim=True), size))
    if eigen_smooth:
        stack = torch.cat(terms, 1)
        small = torch.nn.functional.interpolate(stack, size=(max(1, size[0] // 8), max(1, size[1] // 8)),
                                                mode="bilinear", align_corners=False)
        raw = upsample(first_component(_channel_minmax(small)), size)
    else:
        raw = sum(t.sum(1, keepdim=True) for t in terms)
    maps = minmax(raw.clamp(min=0))
    info = {"layers": len(terms) - 1, "eigen_smooth": bool(eigen_smooth), "aug_smooth": False}
    return Attribution(maps, raw.detach(), display="positive", info=info, scores=scores.detach())


@register_method("fullgrad", label="FullGrad", family="cam", cost="1 forward + 1 backward (gradients at every bias)",
                 aliases=("full_grad",), lazy_target=True)
def fullgrad(model: Model, x: torch.Tensor, targets: torch.Tensor, aug_smooth: bool = False,
             eigen_smooth: bool = False) -> Attribution:
    """FullGrad: |∇ₓS ⊙ x| plus, for every conv/batch-norm layer with a bias b, |b ⊙ ∂S/∂(its output)|,
    each scaled per channel to [0, 1], upsampled and summed; min-max scaled (B, 1, H, W)."""
    if aug_smooth:
        return augmentation_smoothing(model, x, targets, lambda xs, ts: _fullgrad(model, xs, ts, eigen_smooth))
    return _fullgrad(model, x, targets, eigen_smooth)
