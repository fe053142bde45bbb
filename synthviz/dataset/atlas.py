"""Activation atlas (Carter et al., Distill 2019): the activation samples of an index
(:mod:`synthviz.dataset.samples`) laid out in 2-D, binned on a grid, each cell's mean activation
rendered by feature visualization. A class atlas keeps the samples whose attribution favours one
class: their image is predicted as that class and the sampled position adds to its logit
(gradient × activation > 0).

* Layout: UMAP (umap-learn) of the L2-normalised vectors, so its euclidean neighbours are the
  cosine neighbours the paper uses; t-SNE (openTSNE) when umap-learn is absent, or ``pca``. The
  functions are :mod:`synthviz.dataset.embedding`'s.
* Grid: each axis clipped at its 1st and 99th percentile, then cut into ``grid`` bins; cells with
  fewer than ``min_count`` samples are dropped (default :data:`MIN_COUNT`, 6: Lucid's activation
  atlases keep the cells of more than 5 samples; a sparse cell's mean is noise, its icon misleading).
* Icons: the objective of each cell is :func:`synthviz.objectives.direction` with ``cossim_pow=2``
  (dot × cosine² with the cell's mean, averaged over all positions of the layer; Lucid's icons use
  the central position), optionally with the mean whitened by the samples' covariance; rendered
  ``batch`` cells at a time by the ``lucid`` recipe, once per Fourier spectrum of
  :data:`ICON_SPECTRA` (the recipe's 1/f and 1/f^1.5); each cell keeps the render whose final image
  scores the higher objective (Lucid's icons keep the best of 3 attempts by objective). Adam moves
  every coefficient by about the learning rate whatever its gradient, so at 1/f each icon is a fine
  texture and never a region that is flat over the layer's receptive field; a direction the model
  reads only on flat regions (a plain surface: for ``_blocks.5`` of the embedded model a pixel
  noise of 1 % already reads as noise) then gets an icon nearer the noise cells than its own. The
  steeper spectrum gives patches of flat colour in the same steps, and 1/f keeps the fine textures
  (stripes against checkerboard at deeper layers) that 1/f^1.5 renders less closely.

    lay = layout(run, "_blocks.5", method="tsne")
    cells = grid_cells(lay, grid=20)                      # cells of at least MIN_COUNT (6) samples
    icons = render_icons(model, "_blocks.5", cells.means, size=64, steps=64)   # (cells, 3, 64, 64)
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from ..checks import choice, positive
from ..errors import SynthvizError
from ..models import Model
from .run import Run

METHODS = ("umap", "tsne", "pca")
MIN_COUNT = 6  # cells with fewer samples are dropped: Lucid's atlases keep cells of more than 5 (threshold=5)
ICON_SPECTRA = (1.0, 1.5)  # the icons' attempts, Fourier spectra 1/f^d: fine textures and flat regions (docstring)


@dataclass
class Layout:
    """Samples laid out in 2-D: the image of each (``images`` (n,)), its vector (``vectors`` (n, C)),
    its attribution (n,), its image's predicted class (n,) and its place (``coords`` (n, 2))."""

    images: np.ndarray
    vectors: np.ndarray
    attributions: np.ndarray
    predicted: np.ndarray
    coords: np.ndarray
    method: str


@dataclass
class Cells:
    """The kept cells of a grid: ``xy`` (cells, 2) column and row, ``count`` (cells,), ``means``
    (cells, C), ``members`` (the layout's sample rows in each cell) and ``rows`` (the samples binned)."""

    xy: np.ndarray
    count: np.ndarray
    means: np.ndarray
    members: list[np.ndarray]
    rows: np.ndarray
    grid: int


def class_rows(predicted: np.ndarray, attributions: np.ndarray, cls: int) -> np.ndarray:
    """The samples whose attribution favours class ``cls``: predicted as it, positive attribution."""
    return np.flatnonzero((predicted == cls) & (attributions > 0))


def gather(run: Run, layer: str, cls: int | None = None, max_samples: int = 100_000) -> dict[str, np.ndarray]:
    """The usable samples of ``layer`` (skipped images left out; of class ``cls`` only when given),
    at most ``max_samples`` evenly spaced: ``images``, ``vectors`` (n, C), ``attributions``, ``predicted``."""
    positive("max_samples", max_samples, integer=True)
    s = run.samples(layer)
    n, per, c = s["vectors"].shape
    predicted = np.repeat(np.asarray(s["predicted"]), per)
    attributions = np.asarray(s["attributions"]).reshape(-1)
    rows = np.flatnonzero(predicted >= 0) if cls is None else class_rows(predicted, attributions, cls)
    if len(rows) > max_samples:
        rows = rows[np.linspace(0, len(rows) - 1, max_samples).round().astype(np.int64)]
    vectors = np.asarray(s["vectors"]).reshape(n * per, c)[rows] if len(rows) else np.zeros((0, c), np.float32)
    return {"images": rows // per, "vectors": vectors, "attributions": attributions[rows], "predicted": predicted[rows]}


def embed_vectors(vectors: np.ndarray, method: str = "umap", seed: int = 0) -> tuple[np.ndarray, str]:
    """(n, C) -> ((n, 2), the method used): the rows L2-normalised, then UMAP (t-SNE when umap-learn
    is not installed), t-SNE or PCA from :mod:`synthviz.dataset.embedding`."""
    from . import embedding

    choice("method", method, METHODS)
    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if method == "umap":
        try:
            import umap  # noqa: F401 - only whether it is there
        except ImportError:
            method = "tsne"
    with warnings.catch_warnings():  # umap-learn's notes on TensorFlow and n_jobs say nothing about this layout
        warnings.filterwarnings("ignore", message=".*(Tensorflow|n_jobs).*")
        return embedding.EMBEDDINGS.get(method)(x, seed), method


def layout(run: Run, layer: str, *, cls: int | None = None, method: str = "umap", max_samples: int = 100_000,
           seed: int = 0) -> Layout:
    """Gather ``layer``'s samples (of class ``cls``) and embed them (:func:`embed_vectors`)."""
    found = gather(run, layer, cls, max_samples)
    if len(found["vectors"]) < 4:
        which = "" if cls is None else f" whose attribution favours class {cls}"
        raise SynthvizError(f"an atlas needs at least 4 samples{which}; the index has {len(found['vectors'])}: "
                            "index more images or raise --samples-per-image")
    coords, used = embed_vectors(found["vectors"], method, seed)
    return Layout(found["images"], found["vectors"], found["attributions"], found["predicted"],
                  np.asarray(coords, dtype=np.float64), used)


def to_grid(coords: np.ndarray, grid: int) -> np.ndarray:
    """(n, 2) -> (n, 2) int: each point's (column, row) after clipping each axis at its 1st and 99th
    percentile and cutting it into ``grid`` bins."""
    lo, hi = np.percentile(coords, 1, axis=0), np.percentile(coords, 99, axis=0)
    unit = (np.clip(coords, lo, hi) - lo) / np.maximum(hi - lo, 1e-12)
    return np.minimum((unit * grid).astype(np.int64), grid - 1)


def grid_cells(lay: Layout, grid: int = 20, min_count: int = MIN_COUNT, rows: np.ndarray | None = None,
               xy: np.ndarray | None = None) -> Cells:
    """Bin a layout on a ``grid`` x ``grid`` grid (only its samples ``rows`` when given; ``xy``: the
    samples' cells when already known, from :func:`to_grid`); cells with fewer than ``min_count``
    samples dropped. Cells are ordered by row, then column; ``members`` index the layout's samples."""
    positive("grid", grid, integer=True)
    positive("min_count", min_count, integer=True)
    xy = to_grid(lay.coords, grid) if xy is None else xy
    rows = np.arange(len(xy)) if rows is None else np.asarray(rows, dtype=np.int64)
    key = xy[rows, 1] * grid + xy[rows, 0]
    order = rows[np.argsort(key, kind="stable")]
    keys, starts, counts = np.unique(xy[order, 1] * grid + xy[order, 0], return_index=True, return_counts=True)
    kept = counts >= min_count
    if not kept.any():
        raise SynthvizError(f"no cell holds {min_count} samples; lower --min-count or --grid")
    members = [order[s:s + c] for s, c, k in zip(starts, counts, kept) if k]
    means = np.stack([lay.vectors[m].mean(0) for m in members]).astype(np.float32)
    cells = np.stack([keys[kept] % grid, keys[kept] // grid], 1)
    return Cells(cells, counts[kept], means, members, rows, grid)


def top_classes(predicted: np.ndarray, names: list[str] | None, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most frequent classes among ``predicted`` (n,) with their share."""
    counts = Counter(int(p) for p in predicted).most_common(k)
    total = max(len(predicted), 1)
    return [(names[c] if names and 0 <= c < len(names) else str(c), n / total) for c, n in counts]


def whitener(vectors: np.ndarray, eps: float = 1e-2) -> np.ndarray:
    """(C, C): the inverse of the samples' covariance (ridge ``eps`` × its mean variance), which
    turns a mean direction into its whitened form (``means @ W``)."""
    x = np.asarray(vectors, dtype=np.float64)
    cov = np.cov(x, rowvar=False) if len(x) > 1 else np.eye(x.shape[1])
    ridge = eps * max(float(np.trace(cov)) / len(cov), 1e-12)
    return np.linalg.inv(cov + ridge * np.eye(len(cov))).astype(np.float32)


def _render_chunk(model: Model, layer: str, chunk: torch.Tensor, size: int, steps: int, lr: float | None,
                  seed: int, threads: int | None = None, spectra: tuple[float, ...] = ICON_SPECTRA) -> torch.Tensor:
    """Render each direction of ``chunk`` (k, C) in its own batch element, one optimization per
    spectrum of ``spectra``; each element keeps the image whose objective (on the image itself, not
    transformed) is the highest."""
    from ..layers import capture
    from ..objectives import Context, direction
    from ..recipes import visualize

    if threads is not None:  # a Ray worker: the threads it was given
        torch.set_num_threads(threads)
    objective = sum(direction(layer, v, cossim_pow=2, batch=k) for k, v in enumerate(chunk))
    best, score = None, None
    for decay in spectra:
        images = visualize(model, objective, batch=len(chunk), size=size, steps=steps, lr=lr, seed=seed,
                           param_options={"decay": decay}).images
        with torch.no_grad():
            value = objective(Context(images, capture(model, images, [layer]))).float().cpu()
        if best is None:
            best, score = images, value
        else:
            better = (value > score).view(-1, 1, 1, 1).to(images.device)
            best, score = torch.where(better, images, best), torch.maximum(score, value)
    return best


def render_icons(model: Model, layer: str, means: np.ndarray, *, size: int = 64, steps: int = 128, batch: int = 16,
                 whiten: np.ndarray | None = None, seed: int = 0, progress: bool = False,
                 lr: float | None = None, ray: str | None = None,
                 spectra: tuple[float, ...] = ICON_SPECTRA) -> torch.Tensor:
    """(cells, 3, size, size): one feature visualization per row of ``means`` (cells, C), ``batch``
    at a time, each maximising dot × cos² with its direction (whitened by ``whiten`` (C, C)); the lucid
    recipe (``lr``: its learning rate, None: the recipe's), once per Fourier spectrum 1/f^d of
    ``spectra`` (1: the recipe's own), each icon the render of the higher objective. ``ray``
    (``auto``, ``local`` or an address): the batches as Ray tasks, one CPU (or GPU) each, with the
    same seeds."""
    from ..progress import progress as progress_bar

    positive("batch", batch, integer=True)
    directions = torch.from_numpy(np.asarray(means, dtype=np.float32) @ whiten if whiten is not None
                                  else np.asarray(means, dtype=np.float32))
    starts = list(range(0, len(directions), batch))
    with progress_bar(len(directions), "icons", unit="icon", enabled=progress) as bar:
        if ray is not None:
            return torch.cat(list(_ray_chunks(model, layer, directions, starts, batch, size, steps, lr, seed, ray, bar,
                                              tuple(spectra))))
        out = []
        for start in starts:
            out.append(_render_chunk(model, layer, directions[start:start + batch], size, steps, lr, seed + start,
                                     spectra=tuple(spectra)))
            bar.advance(len(out[-1]))
    return torch.cat(out)


def _ray_chunks(model: Model, layer, directions, starts, batch, size, steps, lr, seed, address, bar, spectra):
    """The renders of :func:`render_icons` as Ray tasks, yielded in order."""
    import copy

    from ..cluster import ray_session

    with ray_session(address) as ray:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=1)(_render_chunk)
        shipped = model if model.device.type == "cpu" else copy.deepcopy(model).to("cpu")
        ref = ray.put(shipped)
        pending = [task.remote(ref, layer, directions[s:s + batch], size, steps, lr, seed + s, 1, spectra)
                   for s in starts]
        try:
            for item in pending:
                images = ray.get(item)
                bar.advance(len(images))
                yield images
        finally:
            for item in pending:
                ray.cancel(item, force=True)


def icon_activations(model: Model, layer: str, icons: torch.Tensor) -> torch.Tensor:
    """(n, C): the mean over positions of ``layer`` for each image of ``icons`` (n, 3, H, W), the
    vector an icon is compared with its cell's mean by."""
    from ..layers import capture

    with torch.no_grad():
        act = capture(model, icons.to(model.device), [layer])[layer]
    return act.flatten(2).mean(-1).float().cpu() if act.dim() == 4 else act.float().cpu().reshape(len(icons), -1)
