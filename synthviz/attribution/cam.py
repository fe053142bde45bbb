"""The class-activation-map family at any convolutional layer: Grad-CAM (Selvaraju 2017) and
guided Grad-CAM, CAM (Zhou 2016), Grad-CAM++ (Chattopadhay 2018), XGrad-CAM (Fu 2020), HiRes-CAM
(Draelos 2020), LayerCAM (Jiang 2021) and Eigen-CAM (Muhammad 2020).

Each method weighs the layer's activations A (B, C, h, w); the map is ReLU of their sum over the
channels, bilinearly upsampled to the input. Every CAM takes pytorch-grad-cam's two smoothings:

* ``aug_smooth``: test-time augmentation — the map of the image and of its mirror, each with the
  contrast scaled by 0.9, 1 and 1.1 (around the model's mean colour), min-max normalised and
  averaged (6 × the cost);
* ``eigen_smooth``: the weighted activations projected on their first principal component
  instead of summed (sign fixed so the result correlates positively with the plain sum).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import SynthvizError
from ..models import Model
from .core import (Attribution, check_layer_name, class_ids, layer_activation, layer_activation_and_grad,
                   read_prediction, target_scores, upsample)
from .graph import gap_head
from .guided import GuidedReLU, modified_gradient
from .registry import register_method

_AUGMENTATIONS = [(flip, factor) for flip in (False, True) for factor in (0.9, 1.0, 1.1)]


def first_component(weighted: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, 1, h, w): each image's positions (rows) × channels, centred per channel,
    projected on the first right singular vector; the sign is chosen so the projection correlates
    positively with the channel sum (SVD's sign is arbitrary)."""
    b, c, h, w = weighted.shape
    m = weighted.flatten(2).transpose(1, 2).double()          # (B, hw, C)
    m = m - m.mean(1, keepdim=True)
    _, _, vh = torch.linalg.svd(m, full_matrices=False)
    proj = (m @ vh[:, 0, :, None])[..., 0]                     # (B, hw)
    ref = weighted.sum(1).flatten(1).double()
    corr = ((proj - proj.mean(1, keepdim=True)) * (ref - ref.mean(1, keepdim=True))).sum(1)
    proj = proj * torch.where(corr < 0, -1.0, 1.0).to(proj)[:, None]
    return proj.view(b, 1, h, w).to(weighted.dtype)


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Per-image min-max scaling of (B, 1, H, W) to [0, 1] (constant maps become 0)."""
    flat = maps.flatten(1)
    lo, hi = flat.amin(1), flat.amax(1)
    return ((maps - lo.view(-1, 1, 1, 1)) / (hi - lo).clamp(min=1e-7).view(-1, 1, 1, 1))


Weigh = Callable[..., torch.Tensor]  # (model, x, targets, act, grad, layer) -> weighted activations (B, C, h, w)
Features = Callable[..., tuple]      # (model, x, targets, layer) -> (act, grad or None, scores or None)


def gradient_features(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str) -> tuple:
    """A, ∂score/∂A and the scores: one forward, one backward stopping at the layer."""
    return layer_activation_and_grad(model, x, targets, layer)


def activation_features(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str) -> tuple:
    """A only: a forward that stops at the layer."""
    return layer_activation(model, x, layer), None, None


def run_cam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None, weigh: Weigh, *,
            features: Features = gradient_features, aug_smooth: bool = False,
            eigen_smooth: bool = False) -> Attribution:
    """The shared CAM pipeline: activations (and gradients) at ``layer`` -> ``weigh`` -> sum over
    channels (or first principal component) -> ReLU -> bilinear upsampling to (B, 1, H, W)."""
    layer = check_layer_name(model, layer) if layer != "" else layer
    if aug_smooth:
        return augmentation_smoothing(model, x, targets, lambda xs, ts: run_cam(
            model, xs, ts, layer, weigh, features=features, eigen_smooth=eigen_smooth))
    act, grad, scores = features(model, x, targets, layer)
    weighted = weigh(model, x, targets, act, grad, layer)
    raw = first_component(weighted) if eigen_smooth else weighted.sum(1, keepdim=True)
    maps = upsample(raw.clamp(min=0), x.shape[-2:])
    return Attribution(maps, raw.detach(), display="positive", scores=scores,
                       info={"layer": layer, "aug_smooth": False, "eigen_smooth": bool(eigen_smooth)})


def augmentation_smoothing(model: Model, x: torch.Tensor, targets: torch.Tensor,
                           run: Callable[[torch.Tensor, torch.Tensor], Attribution]) -> Attribution:
    """pytorch-grad-cam's aug_smooth: ``run`` on the images and their mirrors, each with its contrast
    scaled by 0.9, 1 and 1.1 around the model's mean colour (one batch of 6B); each map min-max
    scaled, mirrored back and averaged. ``raw`` is the mirrored-back mean of the raw maps."""
    targets = read_prediction(model, x, targets)  # the class of the image itself, kept for every copy
    mean = model.mean.to(x)
    xs = torch.cat([mean + f * ((x.flip(-1) if flip else x) - mean) for flip, f in _AUGMENTATIONS])
    att = run(xs, targets.repeat(len(_AUGMENTATIONS)))
    n, b = len(_AUGMENTATIONS), len(x)
    maps, raw = minmax(att.maps).view(n, b, *att.maps.shape[1:]), att.raw.view(n, b, *att.raw.shape[1:])
    flips = torch.tensor([flip for flip, _ in _AUGMENTATIONS], device=x.device).view(-1, 1, 1, 1, 1)
    maps = torch.where(flips, maps.flip(-1), maps).mean(0)
    raw = torch.where(flips, raw.flip(-1), raw).mean(0)
    return Attribution(maps, raw, display="positive", info={**att.info, "aug_smooth": True},
                       scores=None if att.scores is None else att.scores[:b])


# --------------------------------------------------------------------------- the weightings

def _gradcam_weights(model, x, targets, act, grad, layer):
    return grad.mean((2, 3), keepdim=True) * act


def _gradcam_plusplus_weights(model, x, targets, act, grad, layer):
    g2 = grad ** 2
    total = act.sum((2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + total * g2 * grad + 1e-6)
    alpha = torch.where(grad != 0, alpha, torch.zeros_like(alpha))
    return (alpha * grad.clamp(min=0)).sum((2, 3), keepdim=True) * act


def _xgradcam_weights(model, x, targets, act, grad, layer):
    total = act.sum((2, 3), keepdim=True)
    return (grad * act / (total + 1e-7)).sum((2, 3), keepdim=True) * act


def _hirescam_weights(model, x, targets, act, grad, layer):
    return grad * act


def _layercam_weights(model, x, targets, act, grad, layer):
    return grad.clamp(min=0) * act


def _eigencam_weights(model, x, targets, act, grad, layer):
    return act


_SMOOTH = "aug_smooth: test-time augmentation (6×); eigen_smooth: first principal component."


@register_method("gradcam", label="Grad-CAM", family="cam", cost="1 forward + 1 backward to the layer",
                 aliases=("grad_cam",), needs_layer=True, lazy_target=True)
def gradcam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
            aug_smooth: bool = False, eigen_smooth: bool = False) -> Attribution:
    """Grad-CAM: α_k = spatial mean of ∂score/∂A_k; map = ReLU(Σ_k α_k A_k), bilinearly upsampled
    to (B, 1, H, W); raw = Σ_k α_k A_k (before the ReLU) at the layer's (h, w). """
    return run_cam(model, x, targets, layer, _gradcam_weights, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


@register_method("guided_gradcam", label="guided Grad-CAM", family="cam",
                 cost="2 forwards + 2 backwards", aliases=("guided_grad_cam",), needs_layer=True, lazy_target=True)
def guided_gradcam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
                   aug_smooth: bool = False, eigen_smooth: bool = False) -> Attribution:
    """Guided Grad-CAM: guided backprop × upsampled Grad-CAM; max over colour of |·|."""
    cam = gradcam(model, x, targets, layer, aug_smooth, eigen_smooth)
    guided, _ = modified_gradient(model, x, targets, GuidedReLU, "guided backprop")
    raw = guided * cam.maps
    return Attribution(raw.abs().amax(1, keepdim=True), raw, info=cam.info, reduction="max", scores=cam.scores)


@register_method("gradcam_plusplus", label="Grad-CAM++", family="cam", cost="1 forward + 1 backward to the layer",
                 aliases=("gradcam++", "gradcampp", "grad_cam_plusplus"), needs_layer=True, lazy_target=True)
def gradcam_plusplus(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
                     aug_smooth: bool = False, eigen_smooth: bool = False) -> Attribution:
    """Grad-CAM++ (exponential-score closed form, as pytorch-grad-cam): α_ij = g² / (2g² + Σ_ab A_ab g³),
    w_k = Σ_ij α_ij ReLU(g_ij); map = ReLU(Σ_k w_k A_k)."""
    return run_cam(model, x, targets, layer, _gradcam_plusplus_weights, aug_smooth=aug_smooth,
                   eigen_smooth=eigen_smooth)


@register_method("xgradcam", label="XGrad-CAM", family="cam", cost="1 forward + 1 backward to the layer",
                 aliases=("xgrad_cam",), needs_layer=True, lazy_target=True)
def xgradcam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
             aug_smooth: bool = False, eigen_smooth: bool = False) -> Attribution:
    """XGrad-CAM: w_k = Σ_ij A_ij g_ij / Σ_ij A_ij; map = ReLU(Σ_k w_k A_k)."""
    return run_cam(model, x, targets, layer, _xgradcam_weights, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


@register_method("hirescam", label="HiRes-CAM", family="cam", cost="1 forward + 1 backward to the layer",
                 aliases=("hires_cam",), needs_layer=True, lazy_target=True)
def hirescam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
             aug_smooth: bool = False, eigen_smooth: bool = False) -> Attribution:
    """HiRes-CAM: ReLU(Σ_k g_k ⊙ A_k) element-wise (faithful to the score for GAP heads)."""
    return run_cam(model, x, targets, layer, _hirescam_weights, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


@register_method("layercam", label="LayerCAM", family="cam", cost="1 forward + 1 backward to the layer",
                 aliases=("layer_cam",), needs_layer=True, lazy_target=True)
def layercam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
             aug_smooth: bool = False, eigen_smooth: bool = False) -> Attribution:
    """LayerCAM: ReLU(Σ_k ReLU(g_k) ⊙ A_k) per position; meaningful at early layers too."""
    return run_cam(model, x, targets, layer, _layercam_weights, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


@register_method("eigencam", label="Eigen-CAM", family="cam", cost="1 forward to the layer (no target, no backward)",
                 aliases=("eigen_cam",), needs_layer=True)
def eigencam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
             aug_smooth: bool = False) -> Attribution:
    """Eigen-CAM: the activations (positions × channels, centred per channel) projected on their
    first principal component; the sign is fixed so the map correlates positively with the mean
    activation over channels. Class-agnostic: the target is not used (it is its own eigen smoothing)."""
    return run_cam(model, x, targets, layer, _eigencam_weights, features=activation_features,
                   aug_smooth=aug_smooth, eigen_smooth=True)


def _gap_features(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str) -> tuple:
    """The feature maps a GAP + linear head reads, and the logits, in one forward (no backward)."""
    head = gap_head(model.net)
    if head is None:
        raise SynthvizError(f"cam needs a model that ends in global average pooling + one linear layer, and "
                            f"{model.name} does not; use gradcam (equal to CAM up to a factor on such models)")
    with torch.no_grad():
        act, logits = head[0](model.normalize(x))
        scores = target_scores(logits, targets)
    return act, head[1], scores


def _cam_weights(model, x, targets, act, fc, layer):
    return fc.weight[class_ids(targets, len(act)).to(fc.weight.device)].to(act)[:, :, None, None] * act


@register_method("cam", label="CAM", family="cam", cost="1 forward (no backward)", aliases=("class_activation_map",),
                 lazy_target=True)
def cam(model: Model, x: torch.Tensor, targets: torch.Tensor, aug_smooth: bool = False,
        eigen_smooth: bool = False) -> Attribution:
    """CAM (Zhou et al. 2016) for models ending in global average pooling + one linear layer: the
    target class's weights applied to the feature maps the pooling reads, Σ_k w_ck A_k (no
    gradient; found by tracing the model with torch.fx). A clear error for other models."""
    att = run_cam(model, x, targets, "", _cam_weights, features=_gap_features, aug_smooth=aug_smooth,
                  eigen_smooth=eigen_smooth)
    att.info["layer"] = "global-average-pool input"
    return att
