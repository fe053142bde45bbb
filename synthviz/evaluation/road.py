"""ROAD, RemOve And Debias (Rong et al., ICML 2022).

Deletion with a constant or blurred fill rewards maps for creating out-of-distribution images: the
fill's very shape tells the model which pixels were removed. ROAD fills the removed pixels by
*noisy linear imputation*: each removed pixel is the weighted mean of its 8 neighbours (1/6 for the
4 direct ones, 1/12 for the diagonals, renormalised at borders), solved jointly as one sparse linear
system per image, plus small Gaussian noise. Pixels outside the removed set are left exactly as
they were. Two orders are reported at fractions 10 %...90 % removed:

* **MoRF** (most relevant first): the mean probability should be low;
* **LeRF** (least relevant first): it should stay high.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models import Model
from ._maps import followed
from .curves import masks_in_order, probabilities, repeat_each

FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_NEIGHBOURS = [(-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
               (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12)]


def linear_impute(image: torch.Tensor, removed: torch.Tensor, noise: float = 0.01,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Noisy linear imputation of one image: (3, H, W) and a (H, W) or (1, H, W) boolean mask of removed
    pixels -> (3, H, W) with only the removed pixels changed (neighbour-weighted means + N(0, noise²))."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    removed = removed.reshape(image.shape[-2:]).cpu().numpy().astype(bool)
    out = image.detach().float().cpu().clone()
    n_unknown = int(removed.sum())
    if n_unknown == 0:
        return out
    h, w = removed.shape
    img = out.numpy().reshape(3, -1).astype(np.float64)
    index = -np.ones(h * w, dtype=np.int64)
    flat = np.flatnonzero(removed.ravel())
    index[flat] = np.arange(n_unknown)
    ys, xs = np.divmod(flat, w)
    rows, cols, vals = [np.arange(n_unknown)], [np.arange(n_unknown)], [np.ones(n_unknown)]
    rhs = np.zeros((n_unknown, 3))
    total = np.zeros(n_unknown)
    parts = []
    for dy, dx, wt in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        total[ok] += wt
        parts.append((ok, ny, nx, wt))
    for ok, ny, nx, wt in parts:
        i = np.flatnonzero(ok)
        j = ny[ok] * w + nx[ok]
        weight = wt / total[i]
        unknown = index[j] >= 0
        rows.append(i[unknown])
        cols.append(index[j[unknown]])
        vals.append(-weight[unknown])
        np.add.at(rhs, i[~unknown], weight[~unknown, None] * img[:, j[~unknown]].T)
    # a tiny pull toward the mean of the known pixels keeps a region with no known neighbour solvable
    reg = 1e-7
    known = ~removed.ravel()
    mean = img[:, known].mean(1) if known.any() else np.full(3, 0.5)
    a = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_unknown, n_unknown)) + reg * sp.identity(n_unknown)
    solved = np.asarray(spsolve(a.tocsc(), rhs + reg * mean[None, :])).reshape(n_unknown, 3)
    values = torch.from_numpy(solved.T).float()
    if noise:
        values = values + noise * torch.randn(values.shape, generator=generator)
    flat_t = torch.from_numpy(flat)
    out.view(3, -1)[:, flat_t] = values.clamp(0, 1)
    return out


def road_curve(model: Model, images: torch.Tensor, maps: torch.Tensor, targets=None,
               order: str = "morf", fractions=FRACTIONS, noise: float = 0.01, seed: int = 0,
               batch_size: int = 32) -> torch.Tensor:
    """(B, F) target probability with the ``fractions`` most (``"morf"``) or least (``"lerf"``) relevant
    pixels removed and imputed. ``targets``: any class target (None: the prediction), as in
    :func:`~synthviz.evaluation.curves.perturbation_curve`."""
    if order not in ("morf", "lerf"):
        raise ValueError("order must be 'morf' or 'lerf'")
    targets = followed(model, images, targets)
    images = images.float().cpu()
    f = torch.tensor(fractions, dtype=torch.float32)
    ranking = maps.float().cpu() if order == "morf" else -maps.float().cpu()
    masks = masks_in_order(ranking, f, seed)  # (B, F, 1, H, W)
    gen = torch.Generator().manual_seed(seed)
    filled = torch.stack([torch.stack([linear_impute(images[b], masks[b, k], noise, gen) for k in range(len(f))])
                          for b in range(len(images))])
    probs = probabilities(model, filled.flatten(0, 1), repeat_each(targets, len(f)), batch_size)
    return probs.view(len(images), len(f))


def road(model: Model, images: torch.Tensor, maps: torch.Tensor, targets=None, **kwargs) -> dict:
    """Mean probability over the fractions, per image: ``{"morf": (B,), "lerf": (B,)}``
    (MoRF low and LeRF high are good)."""
    targets = followed(model, images, targets)  # the prediction read once for both orders
    return {o: road_curve(model, images, maps, targets, o, **kwargs).mean(1) for o in ("morf", "lerf")}
