"""Faithfulness over regions: patches (region perturbation, selectivity), superpixels (IROF) and
imputed pixels (ROAD), as Quantus 0.6 computes them, every perturbed copy batched.

Quantus 0.6 differences (bugs there, documented behaviour here):

* ``IROF`` and ``ROAD`` fail on colour images in Quantus 0.6 (a (B, 1, H, W) superpixel mask
  against (B, C, H, W) images; ROAD's pixel indices run over C·H·W values but index H·W pixels),
  and ``IROF`` calls ``np.trapz``, gone from numpy 2.4. They work here for any channel count and
  equal Quantus on one-channel images.
* ``IROF`` with ``perturb_baseline="mean"`` fills with the mean of the whole *batch* as
  perturbed so far; here of the image as perturbed so far (equal for a batch of one), and a
  batch's images with fewer superpixels are not given a curve padded with zeros.
* ``region_perturbation`` declares lower-is-better in Quantus, but its curve is the *drop* of the
  target's score (Samek et al. 2017's AOPC): with most relevant regions first, higher is better.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...checks import choice, positive
from ...errors import BadValue
from ._common import base_scores, broadcast, fills, outputs, perturbed, prepared, ranks, step_scores, trapezoid
from .registry import MetricData, register_metric


def _padding(size: int, patch: int) -> tuple[int, int]:
    """Quantus's ``get_padding_size``: (before, after) to reach a multiple of ``patch``."""
    total = (patch - size % patch) % patch
    return total // 2, total - total // 2


def _patch_groups(data: MetricData, a: torch.Tensor, patch_size: int, order: str, gen) -> tuple[torch.Tensor, int]:
    """The place of each feature's patch in the perturbation order, (B, C·H·W), and the patch count.

    Patches tile the image zero-padded to a multiple of ``patch_size`` (Quantus's layout, row by
    row); a patch's relevance is the sum of its features' relevance."""
    b, c, h, w = data.images.shape
    (t, bo), (le, ri) = _padding(h, patch_size), _padding(w, patch_size)
    pad = F.pad(a.view(b, c, h, w), (le, ri, t, bo))
    nh, nw = pad.shape[-2] // patch_size, pad.shape[-1] // patch_size
    sums = pad.view(b, c, nh, patch_size, nw, patch_size).sum((1, 3, 5)).reshape(b, nh * nw)
    if order == "random":
        place = torch.from_numpy(np.stack([gen.permutation(nh * nw) for _ in range(b)]))
    else:
        place = ranks(sums, descending=order == "morf")
    patch_of = torch.arange(nh * nw).view(nh, nw).repeat_interleave(patch_size, 0).repeat_interleave(patch_size, 1)
    patch_of = patch_of[t:t + h, le:le + w].reshape(-1)  # (H·W,)
    return place[:, patch_of].repeat(1, c), nh * nw


def _patch_curve(data: MetricData, patch_size: int, order: str, n_regions: int | None, perturb_baseline,
                 abs: bool, normalise: bool, softmax: bool, seed: int, batch_size: int) -> torch.Tensor:
    """(B, S) target scores as patches are replaced by the baseline one more at a time."""
    positive("patch_size", patch_size, integer=True)
    gen = np.random.default_rng(seed)
    x = data.images.reshape(len(data.images), -1)
    a = broadcast(prepared(data.maps, abs, normalise), data.images)
    groups, n_patches = _patch_groups(data, a, int(patch_size), order, gen)
    steps = n_patches if n_regions is None else min(int(n_regions), n_patches)
    fill = fills(perturb_baseline, x, groups, n_patches, True, gen)
    shape = data.images.shape[1:]
    return step_scores(data, steps, lambda s: perturbed(x, groups, fill, s, True).view(len(x), len(s), *shape),
                       softmax, batch_size)


@register_metric("region_perturbation", family="faithfulness", higher_is_better=True, needs=("model",),
                 quantus="RegionPerturbation")
def region_perturbation(data: MetricData, patch_size: int = 8, order: str = "morf", regions_evaluation: int = 100,
                        perturb_baseline="black", abs: bool = False, normalise: bool = True, softmax: bool = True,
                        seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(B,) area (unit steps) under the target's drop as ``patch_size`` patches are replaced one more
    at a time, ``regions_evaluation`` of them, most (``"morf"``; higher is better), least
    (``"lerf"``; lower is better) relevant first or at random (Samek et al. 2017)."""
    order = choice("order", order, ("morf", "lerf", "random"))
    curve = _patch_curve(data, patch_size, order, regions_evaluation, perturb_baseline, abs, normalise, softmax,
                         seed, batch_size)
    return trapezoid(base_scores(data, softmax, batch_size)[:, None] - curve)


@register_metric("selectivity", family="faithfulness", higher_is_better=False, needs=("model",),
                 quantus="Selectivity")
def selectivity(data: MetricData, patch_size: int = 8, perturb_baseline="black", abs: bool = False,
                normalise: bool = True, softmax: bool = True, batch_size: int = 64) -> torch.Tensor:
    """(B,) area (unit steps) under the target's score as every ``patch_size`` patch is replaced,
    most relevant first (Montavon et al. 2018)."""
    return trapezoid(_patch_curve(data, patch_size, "morf", None, perturb_baseline, abs, normalise, softmax, 0,
                                  batch_size))


def _superpixels(image: torch.Tensor, method: str) -> np.ndarray:
    """Quantus's segmentation of one image (C, H, W): SLIC (``start_label=0``) or Felzenszwalb."""
    try:
        from skimage.segmentation import felzenszwalb, slic
    except ImportError as err:
        raise BadValue("irof needs scikit-image for its superpixels: pip install scikit-image") from err
    img = image.permute(1, 2, 0).double().numpy()
    segments = slic(img, start_label=0) if method == "slic" else felzenszwalb(img)
    return np.unique(segments, return_inverse=True)[1].reshape(segments.shape)


@register_metric("irof", family="faithfulness", higher_is_better=True, needs=("model",), quantus="IROF")
def irof(data: MetricData, segmentation_method: str = "slic", perturb_baseline="mean", abs: bool = False,
         normalise: bool = True, softmax: bool = True, batch_size: int = 64) -> torch.Tensor:
    """(B,) area over the curve of the target's score, relative to its value on the image, as
    superpixels are replaced by the baseline most relevant (by mean relevance) first, one more at
    a time (Rieger & Hansen 2020): the superpixel count minus the area (unit steps) under it."""
    method = choice("segmentation_method", segmentation_method, ("slic", "felzenszwalb"))
    x = data.images.reshape(len(data.images), -1)
    a = broadcast(prepared(data.maps, abs, normalise), data.images)
    c = data.images.shape[1]
    segs = [torch.from_numpy(_superpixels(img, method)).reshape(-1).repeat(c) for img in data.images]
    counts = [int(s.max()) + 1 for s in segs]
    groups = torch.stack([ranks(torch.zeros(k, dtype=torch.float64).scatter_add_(0, s, a[i].double())
                                .div_(torch.bincount(s, minlength=k)).view(1, -1))[0][s]
                          for i, (s, k) in enumerate(zip(segs, counts))])
    n_steps = max(counts)
    fill = fills(perturb_baseline, x, groups, n_steps, True, np.random.default_rng(0))
    shape = data.images.shape[1:]
    curve = step_scores(data, n_steps, lambda s: perturbed(x, groups, fill, s, True).view(len(x), len(s), *shape),
                        softmax, batch_size) / base_scores(data, softmax, batch_size)[:, None]
    return torch.stack([k - trapezoid(curve[i:i + 1, :k])[0] for i, k in enumerate(counts)])


def _impute(image: torch.Tensor, removed: torch.Tensor, noise: float, gen: torch.Generator) -> torch.Tensor:
    """ROAD's noisy linear imputation (:func:`synthviz.evaluation.road.linear_impute`, written for
    three channels) of an image with any channel count (C, H, W)."""
    from ..road import linear_impute

    parts = []
    for s in range(0, len(image), 3):
        chunk = image[s:s + 3]
        full = torch.cat([chunk, chunk[:1].expand(3 - len(chunk), -1, -1)]) if len(chunk) < 3 else chunk
        parts.append(linear_impute(full, removed, noise, gen)[:len(chunk)])
    return torch.cat(parts)


@register_metric("road", family="faithfulness", higher_is_better=False, needs=("model",), stochastic=True,
                 quantus="ROAD")
def road(data: MetricData, percentages=tuple(range(1, 100, 2)), noise: float = 0.01, abs: bool = False,
         normalise: bool = True, softmax: bool = True, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(B,) share of ``percentages`` at which the model still predicts the class with that share of
    the most relevant pixels removed and filled by noisy linear imputation (Rong et al. 2022, MoRF).
    A multi-channel map ranks pixels by its channel sum."""
    if data.classes is None:
        raise BadValue("road checks the predicted class: give class targets (indices or names)")
    b, c, h, w = data.images.shape
    pix = prepared(data.maps, abs, normalise).sum(1).reshape(b, -1)
    order = ranks(pix)
    gen = torch.Generator().manual_seed(seed)
    counts = [int(h * w * p / 100) for p in percentages]
    copies = torch.stack([torch.stack([_impute(data.images[i], (order[i] < k).view(h, w), noise, gen)
                                       for k in counts]) for i in range(b)])
    pred = outputs(data.model, copies.flatten(0, 1), softmax, batch_size).argmax(1).view(b, len(counts))
    return (pred == data.classes[:, None]).double().mean(1)
