"""Concepts as techniques: ``synthviz.learn_concepts`` (learn a dictionary over a dataset, see
:mod:`synthviz.concepts`) and ``synthviz.concept_map`` (an image decomposed into a run's concepts).

The technique is ``learn_concepts``, not ``concepts``: ``synthviz.concepts`` is the library package
(``from synthviz import concepts``), and an attribute of ``synthviz`` cannot be both.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Union

import torch

from ..io import as_image, save_image
from ..models import DEFAULT_MODEL, ModelLike
from ..result import Result
from .common import ImageLike
from .registry import register_technique

Dataset = Union[str, list[ImageLike]]  # a folder, a glob, a .txt/.csv list, or images
SMALL = ["skimage:chelsea", "skimage:astronaut", "skimage:coffee", "skimage:rocket"]


@contextlib.contextmanager
def _dataset(dataset: Dataset, size: int):
    """``dataset`` as something :func:`synthviz.dataset.find_images` reads: images given in Python
    are written to a temporary folder (removed on exit)."""
    if isinstance(dataset, (str, os.PathLike)):
        yield dataset
        return
    with tempfile.TemporaryDirectory(prefix="synthviz-concepts-") as tmp:
        for i, image in enumerate(dataset):
            if isinstance(image, (str, os.PathLike)):
                image = as_image(image)
            image = as_image(image[None] if image.dim() == 3 else image, size)
            save_image(image[0], Path(tmp) / f"image-{i:04d}.png")
        yield tmp


@contextlib.contextmanager
def _out(out: str | None):
    if out is not None:
        yield Path(out)
        return
    with tempfile.TemporaryDirectory(prefix="synthviz-concepts-run-") as tmp:
        yield Path(tmp) / "run"


@register_technique("learn_concepts", example={"dataset": SMALL, "layer": "_blocks.3", "concepts": 3, "size": 64,
                                               "importance": "gradient"})  # (fast: Sobol costs 160 passes an image)
def learn_concepts(model: ModelLike = DEFAULT_MODEL, dataset: Dataset | None = None, *, out: str | None = None,
                   layer: str | None = None, method: str = "nmf", concepts: int = 8, k: int | None = None,
                   size: int = 224, epochs: int = 20, lr: float = 3e-3, l1: float = 0.3, l0: float = 1.0,
                   delta: float = 1.0, top: int = 16, render: bool = False,
                   render_steps: int | None = None, seed: int = 0, overwrite: bool = False,
                   progress: bool = False, importance: str | None = None, sobol_images: int | None = None) -> Result:
    """Learn a dictionary of ``concepts`` concepts of ``layer`` over ``dataset`` (``method``: nmf, sae,
    topk, batchtopk, jumprelu, archetypal) into the run folder ``out`` (None: a temporary one).
    The result shows each concept's top image with the concept's heatmap over it (its render with
    ``render=True``); ``info`` holds the metrics, each concept's top images and the run folder.
    ``importance``: ``sobol`` (CRAFT's total Sobol indices, on ``sobol_images`` images per predicted
    class, default 16) or ``gradient`` (gradient × coefficient); None: sobol for nmf, gradient for SAEs.
    ``epochs``, ``lr``, ``l1``, ``l0``, ``delta``: SAE training (see :class:`synthviz.concepts.hyper.SAEHyper`)."""
    import json

    from ..concepts import learn
    from ..concepts.outputs import read_concepts
    from ..errors import BadValue

    if dataset is None:
        raise BadValue("learn_concepts needs a dataset: a folder, a glob, a .txt/.csv list or a list of images")
    with _dataset(dataset, size) as data, _out(out) as run:
        learn(data, run, model=model, layer=layer, method=method, concepts=concepts, k=k, size=size, epochs=epochs,
              lr=lr, l1=l1, l0=l0, delta=delta, top=top, render=render, render_steps=render_steps, seed=seed, overwrite=overwrite, progress=progress,
              importance=importance, sobol_images=sobol_images,
              workers=0 if not isinstance(dataset, (str, os.PathLike)) else None)
        metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        tops = read_concepts(run)
        images = _pictures(run, model, tops, render)
    info = {"run": str(run) if out is not None else None, "metrics": metrics, "method": method,
            "layer": metrics["layer"], "top": {str(c): [p for p, _ in items] for c, items in tops.items()}}
    return Result(images=images, labels=[f"concept {c}" for c in range(len(images))], objective=f"{method}({metrics['layer']})",
                  info=info)


def _pictures(run: Path, model, tops: dict, render: bool) -> torch.Tensor:
    """(K, 3, S, S): each concept's render, or its top image with its heatmap over it."""
    from ..concepts.pictures import coefficient_maps, open_concepts, run_model, upsample
    from ..dataset.sources import read_image
    from ..io import load_image
    from ..overlay import overlay

    dictionary, settings = open_concepts(run)
    if render:
        return torch.cat([load_image(run / "renders" / f"concept-{c:03d}.png") for c in range(dictionary.concepts)])
    size = settings["size"]
    photos = torch.stack([read_image(tops[c][0][0], size) for c in range(dictionary.concepts)])
    maps = coefficient_maps(run_model(dictionary, model), dictionary, photos)
    pick = maps[torch.arange(len(maps)), torch.arange(len(maps))][:, None]
    return overlay(photos, upsample(pick, (size, size)), display="positive")


@register_technique("concept_map", example={"image": "skimage:chelsea", "images": SMALL, "layer": "_blocks.3",
                                            "concepts": 3, "size": 64})
def concept_map(model: ModelLike | None = None, image: ImageLike | None = None, *, run: str | None = None,
                images: list[ImageLike] | None = None, layer: str | None = None, method: str = "nmf",
                concepts: int = 8, size: int = 224, target: int | str | None = None,
                threshold: float = 0.05, importance: str | None = None) -> Result:
    """``image`` decomposed into the concepts of the run ``run`` (made by ``learn_concepts`` or
    ``synthviz concepts``; or, without a run, a dictionary learnt on the fly over ``images`` with
    ``layer``, ``method``, ``concepts`` and ``size``): one heatmap per active concept (largest
    coefficient at least ``threshold`` of the largest), captioned with its importance for the predicted
    class (or ``target``): ``importance`` ``sobol`` (CRAFT's total Sobol indices) or ``gradient``
    (gradient × coefficient); None: sobol for an NMF dictionary, gradient for an SAE.
    ``model``: None for the run's own."""
    from ..concepts import learn
    from ..concepts.pictures import concept_map as decompose, concept_map_result
    from ..errors import BadValue

    if image is None:
        raise BadValue("concept_map needs an image: a file or a (1, 3, H, W) tensor")
    if run is None and not images:
        raise BadValue("concept_map needs run=RUN (made by `synthviz concepts` or learn_concepts(out=...)) or images=[...]")
    if run is not None:
        return concept_map_result(decompose(run, image, model=model, target=target, threshold=threshold,
                                                    importance=importance))
    with _dataset(images, size) as data, _out(None) as tmp:
        learn(data, tmp, model=DEFAULT_MODEL if model is None else model, layer=layer, method=method,
              concepts=concepts, size=size, progress=False, workers=0, importance="gradient")  # (the map has its own)
        return concept_map_result(decompose(tmp, image, model=model, target=target, threshold=threshold,
                                                    importance=importance))
