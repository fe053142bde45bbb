"""Spatial control of style (Gatys et al. 2017): a style (or none) per region, given by masks.

* :func:`load_masks` reads masks (grey images or tensors; white = the style applies) at an image's size.
* :func:`composite` paints each region with its stylised image and leaves the rest as the content
  (exactly: where every mask is 0 the content's pixels are kept).
* :func:`masked_style_objective` is the guided style loss for the optimisation-based ``style``:
  each style's statistics are matched only by the features inside its mask (the mask resized to
  each layer), G = (F·m)(F·m)ᵀ / Σm.
* :func:`saliency_mask`: a mask from a saliency map of the content (Grad-CAM by default),
  thresholded and optionally refined by GrabCut (as in Simonyan et al. 2014's weakly supervised
  segmentation), so "style only what the model looks at" is one option.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SynthvizError
from ..io import read_mask
from ..models import Model
from ..objectives import Context, Objective
from .loss import style_targets

MaskLike = torch.Tensor | str | os.PathLike


def load_masks(masks: MaskLike | Sequence[MaskLike], count: int, size: tuple[int, int]) -> list[torch.Tensor]:
    """One mask per style, each (1, 1, *size) in [0, 1], read by :func:`~synthviz.io.read_mask`
    (a file or a tensor; grey levels kept; resized with a note; an all-zero mask is an error);
    where they overlap they are scaled to sum to 1."""
    items = list(masks) if isinstance(masks, (list, tuple)) else [masks]
    if len(items) != count:
        raise SynthvizError(f"{len(items)} mask(s) for {count} style(s); give one mask per style")
    loaded = [read_mask(m, tuple(size), mode="soft")[None, None] for m in items]
    total = torch.stack(loaded).sum(0).clamp_min(1.0)
    return [m / total for m in loaded]


def note_unplaced_styles(weights: Sequence[float], stacklevel: int = 3) -> None:
    """Several style images and no masks: a note (a warning the CLI prints) saying how they are
    combined: their statistics blended with ``weights`` over the whole image. ``stacklevel`` as
    :func:`warnings.warn`'s, counted from the caller (3: the caller's caller)."""
    if len(weights) < 2:
        return
    warnings.warn(f"{len(weights)} style images and no --mask: their statistics are blended over the whole image "
                  f"with weights {','.join(f'{w:.3g}' for w in weights)} (--blend sets them); give one --mask per "
                  "style to paint each in its own region", stacklevel=stacklevel)


def composite(styled: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], content: torch.Tensor) -> torch.Tensor:
    """Σ mₖ·styledₖ + (1 − Σ mₖ)·content. styled: (B, 3, H, W) each; masks (1, 1, H, W) -> (B, 3, H, W)."""
    masks = [m.to(content) for m in masks]
    rest = (1 - torch.stack(masks).sum(0)).clamp_min(0)
    return sum((m * s.to(content) for s, m in zip(styled, masks)), rest * content)


def _masked_stats(act: torch.Tensor, m: torch.Tensor, stat: str) -> tuple[torch.Tensor, ...]:
    """Statistics of the features (B, C, H, W) weighted by the mask (1, 1, H, W)."""
    b, c = act.shape[:2]
    w = m.reshape(1, 1, -1)
    f = act.reshape(b, c, -1)
    n = w.sum().clamp_min(1e-6)
    if stat == "gram":
        fw = f * w.sqrt()
        return (fw @ fw.transpose(1, 2) / n,)
    mean = (f * w).sum(-1) / n
    centred = (f - mean[..., None]) * w.sqrt()
    return mean, centred @ centred.transpose(1, 2) / n


def _relative_error(stats: tuple[torch.Tensor, ...], target: tuple[torch.Tensor, ...], stat: str) -> torch.Tensor:
    if stat == "gram":
        g, g0 = stats[0], target[0].to(stats[0])
        return (g - g0).pow(2).sum((-2, -1)) / g0.pow(2).sum((-2, -1)).clamp_min(1e-12)
    (mu, cov), (mu0, cov0) = stats, (t.to(stats[0]) for t in target)
    return ((mu - mu0).pow(2).sum(-1) / cov0.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-12)
            + (cov - cov0).pow(2).sum((-2, -1)) / cov0.pow(2).sum((-2, -1)).clamp_min(1e-12))


def masked_style_objective(model: Model, styles: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                           layers: Sequence[str], layer_weights: Sequence[float], stat: str = "gram",
                           transform=None) -> Objective:
    """Minus the guided style error: style k's statistics matched inside mask k only (Gatys et al. 2017).

    styles: (1, 3, h, w) each; masks: (1, 1, H, W) each at any size (resized to every layer).
    A style whose mask is empty adds nothing. ``transform``: the targets' features go through it
    (SWAG's softmax); the caller wraps the objective with the same (``painting.smoothed``).
    """
    targets = [style_targets(model, [s], [1.0], layers, stat, transform) for s in styles]
    masks = [m.to(model.device) for m in masks]

    def fn(c: Context) -> torch.Tensor:
        total = torch.zeros(c.image.shape[0], device=c.image.device)
        for target, mask in zip(targets, masks):
            if float(mask.sum()) == 0:
                continue
            for layer, w in zip(layers, layer_weights):
                act = c[layer]
                m = F.interpolate(mask, size=act.shape[-2:], mode="bilinear", align_corners=False)
                total = total + w * _relative_error(_masked_stats(act, m, stat), target[layer], stat)
        return -total

    return Objective(fn, f"masked_style[{stat}]({len(styles)} region(s))", list(layers))


def saliency_mask(model, image: torch.Tensor, *, method: str = "gradcam", threshold: float = 0.5,
                  grabcut: bool = False, target=None) -> torch.Tensor:
    """A mask (1, 1, H, W) of 0/1 from the saliency of ``image`` (1, 3, H, W): the map scaled to
    [0, 1] and thresholded at ``threshold``; ``grabcut`` refines the edge with OpenCV's GrabCut,
    seeded by the map (sure foreground above (1 + threshold)/2, sure background below threshold/2)."""
    from ..attribution import attribute

    if not 0 < threshold < 1:
        raise SynthvizError(f"threshold must be between 0 and 1, not {threshold}")
    with torch.enable_grad():  # the gradient-based maps need it, even when called under no_grad
        sal = attribute(model, image[:1], method, target).maps.float().cpu()[:1, :1]
    sal = (sal - sal.min()) / (sal.max() - sal.min()).clamp_min(1e-12)
    if not grabcut:
        return (sal >= threshold).float()
    return grabcut_refine(image, sal, threshold)


def grabcut_refine(image: torch.Tensor, sal: torch.Tensor, threshold: float = 0.5, iterations: int = 5) -> torch.Tensor:
    """GrabCut on ``image`` (1, 3, H, W) seeded by a [0, 1] map ``sal`` (1, 1, H, W) -> (1, 1, H, W) of 0/1."""
    import cv2

    from ..io import to_uint8

    s = sal[0, 0].numpy()
    seed = np.where(s >= threshold, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    seed[s >= (1 + threshold) / 2] = cv2.GC_FGD
    seed[s < threshold / 2] = cv2.GC_BGD
    if not (seed == cv2.GC_FGD).any() or not (seed == cv2.GC_BGD).any():
        return (sal >= threshold).float()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(to_uint8(image)[..., ::-1])
    cv2.grabCut(bgr, seed, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    fg = (seed == cv2.GC_FGD) | (seed == cv2.GC_PR_FGD)
    return torch.from_numpy(fg.astype(np.float32))[None, None]
