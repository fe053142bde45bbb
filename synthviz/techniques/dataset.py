"""Techniques that picture a dataset index (see :mod:`synthviz.dataset`): nearest neighbours,
t-SNE/PCA grids, first-layer filters and multifaceted feature visualization. Each takes the model
first (``None``: the model the index was made with) and returns a :class:`~synthviz.result.Result`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Union

import torch

from ..errors import SynthvizError
from ..io import make_grid
from ..models import DEFAULT_MODEL, ModelLike, load_model
from ..result import Result
from .registry import register_technique
from .common import ImageLike

ModelArg = Union[ModelLike, None]  # None: the model the index was made with
# instead of an index, indexed on the fly: a list of images, or a folder, glob or .txt/.csv list (as `synthviz index`)
Images = Union[str, os.PathLike, list[ImageLike], None]


@contextlib.contextmanager
def index_of(run: str | os.PathLike | None, images, model: ModelArg, layer: str | None, size: int,
             samples_per_image: int = 0, need: str = "an index: pass run=RUN (made by `synthviz index`)"):
    """The index a technique reads: the folder ``run``, or a temporary index of ``images`` (with
    ``samples_per_image`` activation samples); ``need`` says what to pass when neither is given."""
    from ..dataset import open_run
    from ..dataset.adhoc import temporary_index

    if run is None and images is None:
        raise SynthvizError(f"this technique needs {need} or images=[...]")
    if run is None:
        with temporary_index(images, load_model(DEFAULT_MODEL if model is None else model), layer, size,
                             samples_per_image=samples_per_image) as r:
            yield r
        return
    r = open_run(run)
    if isinstance(model, str) and model != r.model:
        raise SynthvizError(f"the index in {r.path} was made with {r.model}, not {model}; pass model={r.model!r} or None")
    yield r


SMALL = ["skimage:chelsea", "skimage:astronaut", "skimage:coffee", "skimage:rocket"]


@register_technique("neighbours", example={"image": "skimage:chelsea", "images": SMALL, "layer": "_blocks.3",
                                           "k": 2, "size": 64, "thumb": 32})
def neighbours(model: ModelArg = None, image: str | os.PathLike | torch.Tensor | int | None = None, *,
               run: str | None = None, images: Images = None, layer: str | None = None, k: int = 8,
               size: int = 128, thumb: int = 96) -> Result:
    """The ``k`` nearest neighbours of ``image`` (a file, a (1, 3, H, W) tensor or an image number of
    the index) in ``layer``'s feature space (cosine), as a grid: the query first, then the neighbours.
    Searched in the index ``run``, or in ``images`` (indexed on the fly at ``size``)."""
    from ..dataset.neighbours import neighbour_grid

    if image is None:
        raise SynthvizError("neighbours needs a query image: a file, a tensor or an image number of the index")
    with index_of(run, images, model, layer, size) as r:
        return _neighbours(r, image, layer, k, model, thumb, neighbour_grid)


def _neighbours(r, image, layer, k, model, thumb, neighbour_grid) -> Result:
    layer = r.check_layer(layer)
    image = image[0] if isinstance(image, torch.Tensor) and image.dim() == 4 else image
    images, indices, sims, captions = neighbour_grid(r, image, layer, k, model, thumb)
    return Result(images=images, scores=torch.tensor([1.0] + sims), labels=captions, objective=f"cosine({layer})",
                  figure=make_grid(images, captions), technique="neighbours",
                  info={"layer": layer, "indices": indices, "paths": [r.paths[i] for i in indices],
                        "similarities": sims, "run": str(r.path)})


@register_technique("embedding", example={"images": SMALL, "layer": "_blocks.3", "method": "pca", "size": 64,
                                           "thumb": 16})
def embedding(model: ModelArg = None, *, run: str | None = None, images: Images = None, layer: str | None = None,
              method: str = "tsne", max_images: int = 1024, size: int = 128, thumb: int = 48, seed: int = 0) -> Result:
    """Karpathy's grid: the images of the index ``run`` (or ``images``, indexed on the fly at
    ``size``) placed by a 2-D embedding (``tsne``, ``pca`` or ``umap``) of their features,
    snapped to a grid so every image shows once."""
    from ..dataset.embedding import embedding_grid

    with index_of(run, images, model, layer, size) as r:
        layer = r.check_layer(layer)
        g = embedding_grid(r, layer, method, max_images, thumb, seed)
    picture = g["picture"]
    return Result(images=picture[None], technique="embedding", figure=picture, objective=f"{method}({layer})",
                  labels=[f"{method} grid"],
                  info={"layer": layer, "method": method, "rows": g["rows"], "cols": g["cols"],
                        "paths": [r.paths[int(i)] for i in g["indices"]], "cells": [int(c) for c in g["cells"]]})


@register_technique("filters", example={"scale": 2})
def filters(model: ModelLike = DEFAULT_MODEL, *, weights: str = "default", scale: int = 8) -> Result:
    """The first convolution's filters as RGB images (each min-max scaled), in a grid."""
    from ..dataset.filters import filter_images

    m = load_model(model, weights)
    images, name = filter_images(m, scale)
    figure = make_grid(images, pad=max(1, scale // 4))
    return Result(images=images, labels=[str(i) for i in range(len(images))], figure=figure, technique="filters",
                  objective=f"filters({name})", info={"layer": name, "model": m.name, "count": len(images)})


@register_technique("facets", example={"images": SMALL, "layer": "_blocks.3", "unit": 0, "facets": 2, "size": 64,
                                       "steps": 2})
def facets(model: ModelArg = None, *, run: str | None = None, images: Images = None, layer: str | None = None,
           unit: int = 0,
           facets: int = 3, top: int | None = None, recipe: str = "lucid", size: int = 128,
           steps: int | None = None, lr: float | None = None, seed: int = 0,
           progress: bool | str = False) -> Result:
    """Multifaceted feature visualization: ``unit``'s top images (in the index ``run``, or among
    ``images`` indexed on the fly at ``size``) clustered into ``facets`` groups, one render per group
    started from the group's mean image. The figure shows each start above its render."""
    with index_of(run, images, model, layer, size) as r:
        return _facets(r, model, layer, unit, facets, top, recipe, size, steps, lr, seed, progress)


def _facets(r, model, layer, unit, facets, top, recipe, size, steps, lr, seed, progress) -> Result:
    from ..dataset.facets import render_facets
    from ..io import resize

    layer = r.check_layer(layer)
    result, clusters, starts = render_facets(r, layer, unit, facets, model=None if isinstance(model, str) else model,
                                             top=top, recipe=recipe, size=size, steps=steps, lr=lr, seed=seed,
                                             progress=progress)
    starts = resize(starts, (size, size))
    labels = [f"facet {i + 1} ({len(c)} images)" for i, c in enumerate(clusters)]
    figure = make_grid(torch.cat([starts, result.images]), [f"start {i + 1}" for i in range(len(starts))] + labels,
                       ncol=len(starts))
    return Result(images=result.images, history=result.history, objective=result.objective, steps=result.steps,
                  stopped=result.stopped, labels=labels, figure=figure, technique="facets",
                  scores=result.values if len(result.history) else None,
                  info={"layer": layer, "unit": unit, "clusters": [[r.paths[i] for i in c] for c in clusters],
                        "recipe": recipe, "run": str(Path(r.path))})
