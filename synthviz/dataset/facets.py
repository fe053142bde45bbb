"""Multifaceted feature visualization (Nguyen, Yosinski & Clune 2016).

A unit often responds to several different things. Its top images are clustered (k-means on
their per-image vectors from the index), and one render per cluster starts from the mean of the
cluster's images instead of noise, so each facet of the unit shows in its own picture. The renders
are the feature-visualization recipe (``lucid`` or ``classic``) run by :func:`synthviz.engine.render`.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..checks import non_negative, positive
from ..errors import SynthvizError
from ..models import ModelLike, load_model
from ..objectives import channel
from ..result import Result
from ..recipes import RECIPES, visualize
from .run import Run, open_run


def cluster_top_images(run: str | os.PathLike | Run, layer: str, unit: int, facets: int = 3,
                       top: int | None = None, feature_layer: str | None = None,
                       seed: int = 0) -> list[list[int]]:
    """The unit's top images (``top`` of them; default all the index kept) split into ``facets``
    clusters by k-means on their vectors at ``feature_layer`` (default ``layer``). Returns the
    image indices of each cluster, largest cluster first (ties: the best-ranked image first)."""
    positive("facets", facets, integer=True)
    positive("top", top, integer=True)
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise SynthvizError('facets cluster with k-means from scikit-learn: pip install "synthviz[embed]"') from None

    run = open_run(run)
    examples = run.top_examples(layer, unit, top)
    if len(examples) < facets:
        raise SynthvizError(f"unit {unit} has {len(examples)} top images, fewer than {facets} facets; "
                            "index with a larger --top-k or ask for fewer facets")
    indices = np.array([e.index for e in examples])
    x = np.asarray(run.features(run.check_layer(feature_layer or layer))[np.sort(indices)], dtype=np.float64)
    x = x[np.argsort(np.argsort(indices))]  # back to rank order
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    labels = KMeans(n_clusters=facets, n_init=10, random_state=seed).fit_predict(x)
    clusters = [[int(indices[j]) for j in np.flatnonzero(labels == c)] for c in range(facets)]
    rank = {int(i): r for r, i in enumerate(indices)}
    return sorted(clusters, key=lambda c: (-len(c), rank[c[0]]))


def mean_images(run: Run, clusters: list[list[int]]) -> torch.Tensor:
    """(K, 3, S, S): the pixel mean of each cluster's images, as the pass saw them."""
    return torch.stack([torch.stack([run.image(i) for i in c]).mean(0) for c in clusters])


def render_facets(run: str | os.PathLike | Run, layer: str, unit: int, facets: int = 3, *,
                  model: ModelLike | None = None, top: int | None = None,
                  recipe: str = "lucid", size: int = 128, steps: int | None = None, lr: float | None = None,
                  seed: int = 0, progress: bool | str = False) -> tuple[Result, list[list[int]], torch.Tensor]:
    """One render of ``unit`` per facet, each started from its cluster's mean image.

    Returns the render (``images`` (K, 3, size, size)), the clusters' image indices and the
    mean images (K, 3, S, S) the renders started from.
    """
    positive("facets", facets, integer=True)  # checked before anything is clustered or rendered
    positive("size", size, integer=True)
    non_negative("steps", steps, integer=True)
    run = open_run(run)
    layer = run.check_layer(layer)
    if recipe not in RECIPES:
        raise SynthvizError(f"unknown recipe '{recipe}'; use one of {', '.join(RECIPES)}")
    clusters = cluster_top_images(run, layer, unit, facets, top, seed=seed)
    starts = mean_images(run, clusters)
    m = load_model(model if model is not None else run.model, run.settings["weights"])
    objective = sum(channel(layer, unit, batch=i) for i in range(len(clusters)))
    result = visualize(m, objective, batch=len(clusters), size=size, recipe=recipe, steps=steps, lr=lr,
                       seed=seed, progress=progress, init=starts)
    return result, clusters, starts
