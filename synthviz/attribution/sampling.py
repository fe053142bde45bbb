"""Attribution by sampling the model on masked copies of the image: RISE, LIME and KernelSHAP.

* ``rise`` (Petsiuk et al., BMVC 2018): N random binary grids (``grid`` × ``grid`` cells, each kept
  with probability ``p``), bilinearly upsampled to one cell more than the image and cropped at a
  random shift; the map is Σ_i score(x ⊙ M_i) · M_i / (N · p).
* ``lime`` (Ribeiro et al., KDD 2016): SLIC superpixels (``skimage.segmentation.slic``), N random
  on/off vectors (the first all on), off superpixels filled with ``baseline`` (default: each
  superpixel's mean colour, as in lime), and a ridge regression of the scores on the on/off
  vectors weighted by exp(−d² / width²) with d the cosine distance to the all-on vector (lime's
  image kernel, width 0.25). The map is each superpixel's coefficient.
* ``kernelshap`` (Lundberg & Lee, NeurIPS 2017): the same superpixels; coalition sizes drawn from
  the Shapley kernel (M − 1) / (C(M, k) k (M − k)) over k = 1..M−1, plus the empty and the full
  coalition with weight 10⁶ (so Σφ ≈ f(x) − f(baseline)); a weighted least-squares fit.

Scores come from :func:`~synthviz.attribution.core.target_scores` on the model's output (logits).
All three take ``samples``, ``seed`` and ``batch_size`` (images per forward pass; None: see
:mod:`~synthviz.attribution.batching`) and show a rich
progress bar on a terminal when there are many batches. Fits run in float64 in torch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SynthvizError
from ..models import Model
from .batching import forward_batch
from .core import Attribution, make_baseline, progress, target_scores
from .registry import register_method

def _check(model: Model, x: torch.Tensor, samples: int, batch_size: int | None) -> int:
    """Checks ``samples``; the images per forward pass (None: :func:`forward_batch`'s choice)."""
    if int(samples) < 1:
        raise SynthvizError(f"samples must be at least 1, not {samples}")
    return forward_batch(model, x, batch_size)


@torch.no_grad()
def masked_scores(model: Model, x: torch.Tensor, fill: torch.Tensor, masks: torch.Tensor, target: torch.Tensor,
                  batch_size: int, label: str) -> torch.Tensor:
    """Scores of x ⊙ M + fill ⊙ (1 − M) for one image ``x`` (1, 3, H, W) and masks (N, 1, H, W) -> (N,)."""
    out = []
    n = len(masks)
    with progress(math.ceil(n / batch_size), label) as advance:
        for s in range(0, n, batch_size):
            m = masks[s:s + batch_size]
            batch = x * m + fill * (1 - m)
            out.append(target_scores(model(batch), target.repeat(len(m))))
            advance()
    return torch.cat(out)


# --------------------------------------------------------------------------- RISE

def rise_masks(n: int, size: tuple[int, int], grid: int, p: float, gen: torch.Generator,
               device=None) -> torch.Tensor:
    """(n, 1, H, W) RISE masks in [0, 1]: binary (grid × grid) cells kept with probability ``p``,
    bilinearly upsampled to (grid + 1) cells and cropped at a random shift within one cell."""
    h, w = size
    ch, cw = math.ceil(h / grid), math.ceil(w / grid)
    cells = (torch.rand(n, 1, grid, grid, generator=gen) < p).float()
    up = F.interpolate(cells, size=((grid + 1) * ch, (grid + 1) * cw), mode="bilinear", align_corners=False)
    dy = torch.randint(0, ch, (n,), generator=gen)
    dx = torch.randint(0, cw, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None])[:, :, None].expand(n, h, w)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, :].expand(n, h, w)
    out = up[:, 0][torch.arange(n)[:, None, None], rows, cols][:, None]
    return out.clamp_(0, 1).to(device)


@register_method("rise", label="RISE", family="sampling", cost="samples forwards (default 1000)",
                 aliases=("random_masks",))
def rise(model: Model, x: torch.Tensor, targets: torch.Tensor, samples: int = 1000, grid: int = 7,
         p: float = 0.5, seed: int | None = 0, batch_size: int | None = None) -> Attribution:
    """RISE: Σ score(x ⊙ M_i) · M_i / (N · p) over ``samples`` random masks (hidden pixels black).

    ``raw``: that sum (B, 1, H, W); ``maps``: raw − its per-image minimum (the paper shows min-max
    normalised maps; the order of the pixels is unchanged). The same masks serve every image."""
    batch_size = _check(model, x, samples, batch_size)
    if not 0 < p <= 1 or int(grid) < 1:
        raise SynthvizError(f"RISE needs 0 < p <= 1 and grid >= 1 (got p={p}, grid={grid})")
    gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
    masks = rise_masks(int(samples), tuple(x.shape[-2:]), int(grid), p, gen, x.device)
    raw = []
    for i in range(len(x)):
        s = masked_scores(model, x[i:i + 1], torch.zeros_like(x[i:i + 1]), masks, targets[i:i + 1],
                          int(batch_size), "RISE")
        raw.append((s.view(-1, 1, 1, 1) * masks).sum(0, keepdim=True) / (len(masks) * p))
    raw = torch.cat(raw)
    maps = raw - raw.flatten(1).amin(1).view(-1, 1, 1, 1)
    return Attribution(maps, raw, display="positive", info={"samples": int(samples), "grid": int(grid), "p": p})


# --------------------------------------------------------------------------- superpixel methods

def superpixels(image: torch.Tensor, segments: int = 50, compactness: float = 10.0) -> torch.Tensor:
    """SLIC superpixels of one image (3, H, W) in [0, 1] -> labels (H, W) long in 0..M−1."""
    from skimage.segmentation import slic

    arr = image.detach().permute(1, 2, 0).cpu().double().numpy()
    labels = slic(arr, n_segments=int(segments), compactness=compactness, start_label=0)
    _, labels = np.unique(labels, return_inverse=True)  # consecutive labels
    labels = torch.from_numpy(labels.reshape(arr.shape[:2])).long()
    if labels.max() < 1:  # SLIC finds one region in noise or flat images: a regular grid instead
        h, w = labels.shape
        side = max(1, round(math.sqrt(h * w / int(segments))))
        rows, cols = torch.arange(h) // side, torch.arange(w) // side
        labels = rows[:, None] * (int(cols.max()) + 1) + cols[None, :]
    return labels


def segment_fill(x: torch.Tensor, labels: torch.Tensor, baseline) -> torch.Tensor:
    """What hidden superpixels show: ``"mean"`` (each superpixel's mean colour) or any
    integrated-gradients baseline (black, white, blurred, an image) -> (1, 3, H, W)."""
    if isinstance(baseline, str) and baseline == "mean":
        m = int(labels.max()) + 1
        flat = labels.view(-1).to(x.device)
        sums = torch.zeros(3, m, device=x.device).index_add_(1, flat, x[0].reshape(3, -1))
        counts = torch.bincount(flat, minlength=m).clamp(min=1)
        return (sums / counts)[:, flat].view_as(x)
    return make_baseline(baseline, x)


def weighted_fit(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """Weighted (ridge) least squares y ≈ c + z β in float64; the intercept is not penalised.
    (N, M), (N,), (N,) -> β (M,)."""
    z, y, w = z.double(), y.double(), w.double()
    a = torch.cat([torch.ones(len(z), 1, dtype=z.dtype, device=z.device), z], 1)
    gram = a.T @ (w[:, None] * a)
    pen = torch.full((a.shape[1],), float(ridge), dtype=z.dtype, device=z.device)
    pen[0] = 0
    coef = torch.linalg.lstsq(gram + torch.diag(pen), (a.T @ (w * y))[:, None]).solution[:, 0]
    return coef[1:]


def _explain_superpixels(model, x, targets, coalitions, segments, baseline, seed, batch_size, label):
    """Shared loop: per image, superpixels, coalitions (N, M) and their weights -> coefficient maps.
    ``coalitions(m, gen)`` draws from a generator seeded afresh for every image, so an image gets the
    same draws whatever batch it is in."""
    raw, counts = [], []
    for i in range(len(x)):
        xi = x[i:i + 1]
        labels = superpixels(xi[0], segments)
        m = int(labels.max()) + 1
        z, w, ridge = coalitions(m, torch.Generator().manual_seed(0 if seed is None else int(seed)))
        masks = z[:, labels.view(-1)].view(len(z), 1, *labels.shape).to(x.device, x.dtype)
        y = masked_scores(model, xi, segment_fill(xi, labels, baseline), masks, targets[i:i + 1], batch_size, label)
        beta = weighted_fit(z, y.cpu(), w, ridge)
        raw.append(beta.float()[labels].view(1, 1, *labels.shape).to(x.device))
        counts.append(m)
    raw = torch.cat(raw)
    return Attribution(raw.clone(), raw, display="positive", info={"superpixels": counts})


@register_method("lime", label="LIME", family="sampling", cost="samples forwards (default 500)")
def lime(model: Model, x: torch.Tensor, targets: torch.Tensor, samples: int = 500, segments: int = 50,
         baseline: str | torch.Tensor = "mean", kernel_width: float = 0.25, ridge: float = 1.0, seed: int | None = 0,
         batch_size: int | None = None) -> Attribution:
    """LIME on SLIC superpixels: each superpixel's coefficient in a locally weighted ridge fit
    (lime's defaults: exponential kernel of width 0.25 on the cosine distance, ridge α = 1)."""
    batch_size = _check(model, x, samples, batch_size)

    def coalitions(m, gen):
        z = torch.randint(0, 2, (int(samples), m), generator=gen).double()
        z[0] = 1
        cos = z.sum(1) / (z.norm(dim=1).clamp(min=1e-12) * math.sqrt(m))
        return z, torch.exp(-((1 - cos) ** 2) / kernel_width ** 2), ridge

    att = _explain_superpixels(model, x, targets, coalitions, segments, baseline, seed, int(batch_size), "LIME")
    att.info.update(samples=int(samples))
    return att


def shapley_coalitions(m: int, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, m) coalitions and their weights: the empty and full ones (weight 10⁶), then sizes drawn
    from the Shapley kernel and members uniformly (weight 1 each: the kernel is in the sampling)."""
    if m < 2:
        z = torch.tensor([[0.0] * m, [1.0] * m], dtype=torch.float64)
        return z, torch.full((2,), 1e6, dtype=torch.float64)
    k = torch.arange(1, m, dtype=torch.float64)
    size_p = (m - 1) / (k * (m - k))
    sizes = (torch.multinomial(size_p, n - 2, replacement=True, generator=gen) + 1 if n > 2
             else torch.zeros(0, dtype=torch.long))
    order = torch.rand(len(sizes), m, generator=gen).argsort(1)
    z = (order < sizes[:, None]).double()
    z = torch.cat([torch.zeros(1, m, dtype=torch.float64), torch.ones(1, m, dtype=torch.float64), z])
    w = torch.ones(len(z), dtype=torch.float64)
    w[:2] = 1e6
    return z, w


@register_method("kernelshap", label="KernelSHAP", family="sampling", cost="samples forwards (default 500)",
                 aliases=("kernel_shap", "shap"))
def kernelshap(model: Model, x: torch.Tensor, targets: torch.Tensor, samples: int = 500, segments: int = 50,
               baseline: str | torch.Tensor = "black", seed: int | None = 0, batch_size: int | None = None) -> Attribution:
    """KernelSHAP on SLIC superpixels: Shapley values φ of the superpixels (hidden ones show
    ``baseline``), from a Shapley-kernel-weighted least-squares fit; Σφ ≈ f(x) − f(baseline)."""
    batch_size = _check(model, x, samples, batch_size)
    att = _explain_superpixels(model, x, targets, lambda m, gen: (*shapley_coalitions(m, int(samples), gen), 0.0),
                               segments, baseline, seed, int(batch_size), "KernelSHAP")
    att.info.update(samples=int(samples))
    return att
