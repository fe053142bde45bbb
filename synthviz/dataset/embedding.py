"""2-D embeddings of an index's per-image features (PCA in torch, t-SNE with openTSNE, UMAP when
installed) and Karpathy's t-SNE grid: thumbnails snapped to the cells of a grid, every image
exactly once (an optimal assignment of images to cells by distance)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch

from ..checks import positive
from ..errors import SynthvizError
from ..registry import Registry
from .run import Run, open_run

EMBEDDINGS: Registry[Callable[[np.ndarray, int], np.ndarray]] = Registry("embedding", "use pca, tsne or umap")


@EMBEDDINGS.register("pca")
def pca(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, C) -> (N, 2): the first two principal components (torch SVD of the centred features)."""
    t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    t = t - t.mean(0)
    _, _, v = torch.linalg.svd(t, full_matrices=False)
    out = t @ v[:2].T
    if out.shape[1] < 2:
        out = torch.cat([out, torch.zeros(len(out), 2 - out.shape[1], dtype=out.dtype)], 1)
    signs = torch.sign(out[out.abs().argmax(0), torch.arange(2)])  # a fixed sign per axis
    return (out * torch.where(signs == 0, 1, signs)).numpy()


@EMBEDDINGS.register("tsne")
def tsne(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, C) -> (N, 2) with openTSNE (perplexity capped for small sets), PCA-initialised."""
    try:
        from openTSNE import TSNE
    except ImportError:
        raise SynthvizError('t-SNE needs openTSNE, in the embed extra: pip install "synthviz[embed]" '
                            "(or use --method pca)") from None
    x = np.asarray(x, dtype=np.float64)
    perplexity = float(max(2.0, min(30.0, (len(x) - 1) / 3)))
    return np.asarray(TSNE(perplexity=perplexity, random_state=seed, n_jobs=1, verbose=False).fit(x))


@EMBEDDINGS.register("umap")
def umap(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, C) -> (N, 2) with umap-learn; without it, an error naming the extra (never another method)."""
    try:
        import umap as umap_lib
    except ImportError:
        raise SynthvizError('UMAP needs umap-learn, in the embed extra: pip install "synthviz[embed]" '
                            "(or use --method tsne)") from None
    return umap_lib.UMAP(n_components=2, random_state=seed).fit_transform(np.asarray(x, dtype=np.float64))


def embed(run: str | os.PathLike | Run, layer: str | None = None, method: str = "tsne", max_images: int = 1024,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embed the run's per-image vectors of ``layer`` in 2-D.

    At most ``max_images`` images (evenly spaced through the run, skipped ones left out).
    Returns (image indices (n,), coordinates (n, 2)).
    """
    positive("max_images", max_images, integer=True)
    run = open_run(run)
    feats = run.features(run.check_layer(layer))
    valid = np.flatnonzero(~np.isnan(np.asarray(feats[:, 0])))
    if len(valid) < 3:
        raise SynthvizError("an embedding needs at least 3 indexed images")
    chosen = valid[np.linspace(0, len(valid) - 1, min(max_images, len(valid))).round().astype(int)]
    chosen = np.unique(chosen)
    x = np.asarray(feats[chosen], dtype=np.float64)
    # standardise the units, so a few loud channels do not decide the layout alone
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
    return chosen, EMBEDDINGS.get(method)(x, seed)


def grid_shape(n: int) -> tuple[int, int]:
    """Rows and columns of the squarest grid with at least ``n`` cells."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def snap_to_grid(coords: np.ndarray, rows: int | None = None, cols: int | None = None) -> np.ndarray:
    """Assign each 2-D point a distinct cell of a rows x cols grid, keeping the layout: the
    assignment minimising the total squared distance (points and cells both scaled to [0, 1]).
    Returns the cell (row * cols + col) of each point."""
    from scipy.optimize import linear_sum_assignment

    n = len(coords)
    if rows is None or cols is None:
        rows, cols = grid_shape(n)
    if rows * cols < n:
        raise SynthvizError(f"a {rows}x{cols} grid cannot hold {n} images")
    c = np.asarray(coords, dtype=np.float64)
    c = (c - c.min(0)) / np.maximum(c.max(0) - c.min(0), 1e-12)
    gy, gx = np.meshgrid(np.linspace(0, 1, rows), np.linspace(0, 1, cols), indexing="ij")
    cells = np.stack([gx.ravel(), gy.ravel()], 1)
    cost = ((c[:, None, :] - cells[None]) ** 2).sum(-1)
    points, assigned = linear_sum_assignment(cost)
    out = np.empty(n, dtype=int)
    out[points] = assigned
    return out


def grid_picture(run: str | os.PathLike | Run, indices: np.ndarray, cells: np.ndarray, cols: int, rows: int,
                 thumb: int = 48) -> torch.Tensor:
    """(3, rows * thumb, cols * thumb): each image's thumbnail in its cell, white where empty."""
    from ..io import resize

    positive("thumb", thumb, integer=True)
    run = open_run(run)
    canvas = torch.ones(3, rows * thumb, cols * thumb)
    for i, cell in zip(indices, cells):
        r, c = divmod(int(cell), cols)
        canvas[:, r * thumb : (r + 1) * thumb, c * thumb : (c + 1) * thumb] = resize(run.image(int(i))[None], (thumb, thumb))[0]
    return canvas


def embedding_grid(run: str | os.PathLike | Run, layer: str | None = None, method: str = "tsne",
                   max_images: int = 1024, thumb: int = 48, seed: int = 0) -> dict:
    """Karpathy's grid: embed, snap to a grid, paste thumbnails. Returns ``picture`` (3, H, W),
    ``indices`` (n,), ``coords`` (n, 2), ``cells`` (n,), ``rows``, ``cols``."""
    positive("thumb", thumb, integer=True)  # both checked before the embedding is computed
    positive("max_images", max_images, integer=True)
    EMBEDDINGS.get(method)
    run = open_run(run)
    indices, coords = embed(run, layer, method, max_images, seed)
    rows, cols = grid_shape(len(indices))
    cells = snap_to_grid(coords, rows, cols)
    return {"picture": grid_picture(run, indices, cells, cols, rows, thumb), "indices": indices, "coords": coords,
            "cells": cells, "rows": rows, "cols": cols}
