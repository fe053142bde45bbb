"""Nearest neighbours of an image in a layer's feature space (cosine similarity of the per-image
vectors an index holds), as a list or as a grid of thumbnails (the AlexNet figure)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..checks import positive
from ..errors import SynthvizError
from ..models import Model, load_model
from .forward import forward_batch, index_tap
from .run import Run, open_run
from .sources import read_image

CHUNK = 8192  # rows of the feature memmap read at a time: memory stays flat in the dataset size


def query_vector(run: Run, query: int | str | os.PathLike | torch.Tensor, layer: str,
                 model: str | Model | torch.nn.Module | None = None) -> np.ndarray:
    """The (C,) feature vector of ``query``: an image index in the run, a path the run holds,
    or any image file / (3, H, W) tensor (put through the run's model as the pass did)."""
    if isinstance(query, int):
        if not 0 <= query < len(run.paths):
            raise SynthvizError(f"image {query} is out of range: the index holds {len(run.paths)} images")
        vector = np.asarray(run.features(layer)[query])
        if np.isnan(vector).any():
            why = dict(run.skipped).get(run.paths[query], "unusable")
            raise SynthvizError(f"image {query} ({run.paths[query]}) was skipped by the index ({why}); pick another")
        return vector
    if isinstance(query, (str, os.PathLike)):
        target = os.path.abspath(os.fspath(query))
        for i, p in enumerate(run.paths):
            if os.path.abspath(p) == target:
                return query_vector(run, i, layer)
        if not Path(query).is_file():
            raise SynthvizError(f"query image not found: {query}; pass an image file or an index number")
        m = load_model(model if model is not None else run.model, run.settings["weights"])
        image = read_image(os.fspath(query), run.size, m.min_size)  # the size rule the pass applied
    else:
        image = query.detach().float().reshape(3, *query.shape[-2:])
        image = torch.nn.functional.interpolate(image[None], size=(run.size, run.size), mode="bicubic",
                                                antialias=True, align_corners=False)[0].clamp(0, 1)
        m = load_model(model if model is not None else run.model, run.settings["weights"])
    with m.evaluating(), index_tap(m, [layer]) as tap:
        values, _ = forward_batch(m, tap, image[None], run.settings["reduce"])[layer]
    return values[0].numpy()


def nearest(run: str | os.PathLike | Run, query: int | str | os.PathLike | torch.Tensor, layer: str | None = None,
            k: int = 8, model: str | Model | torch.nn.Module | None = None) -> list[tuple[int, float]]:
    """The ``k`` images of the run most similar to ``query`` (cosine of the layer's per-image
    vectors), as ``(image index, similarity)``, most similar first (ties: lower index first).
    A query that is in the run finds itself first (similarity 1)."""
    positive("k", k, integer=True)
    run = open_run(run)
    layer = run.check_layer(layer)
    q = query_vector(run, query, layer, model).astype(np.float64)
    q = q / max(np.linalg.norm(q), 1e-12)
    feats = run.features(layer)
    sims = np.empty(len(feats), dtype=np.float64)
    for start in range(0, len(feats), CHUNK):
        block = np.asarray(feats[start : start + CHUNK], dtype=np.float64)
        norms = np.maximum(np.linalg.norm(block, axis=1), 1e-12)
        s = block @ q / norms
        sims[start : start + CHUNK] = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-sims, kind="stable")[: min(k, int(np.isfinite(sims).sum()))]
    return [(int(i), float(sims[i])) for i in order]


def neighbour_grid(run: str | os.PathLike | Run, query, layer: str | None = None, k: int = 8,
                   model=None, thumb: int = 96) -> tuple[torch.Tensor, list[int], list[float], list[str]]:
    """Thumbnails of the query and its ``k`` neighbours: images (1 + k, 3, thumb, thumb), the
    neighbours' indices and similarities, and one caption per thumbnail."""
    from ..io import resize

    positive("thumb", thumb, integer=True)
    run = open_run(run)
    found = nearest(run, query, layer, k, model)
    if isinstance(query, int):
        first = run.image(query)
    elif isinstance(query, torch.Tensor):
        first = query.detach().float().reshape(3, *query.shape[-2:])
    else:
        first = read_image(os.fspath(query), run.size)
    images = [first] + [run.image(i) for i, _ in found]
    images = torch.stack([resize(im[None], (thumb, thumb))[0] for im in images])
    captions = ["query"] + [f"{Path(run.paths[i]).name} {s:.3f}" for i, s in found]
    return images, [i for i, _ in found], [s for _, s in found], captions
