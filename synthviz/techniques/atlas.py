"""Whole-layer views from a dataset index: the activation atlas and the class activation atlas
(Carter et al., Distill 2019; see :mod:`synthviz.dataset.atlas`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from ..dataset.atlas import MIN_COUNT
from ..errors import SynthvizError
from ..models import load_model
from ..result import Result
from .dataset import SMALL, Images, ModelArg, index_of
from .registry import register_technique


def _sides(m, lay, cls, versus) -> list[tuple[str, np.ndarray]]:
    """[(title, sample rows)]: the whole layout, or the samples of each class."""
    from ..dataset.atlas import class_rows

    if cls is None:
        if versus is not None:
            raise SynthvizError("--versus compares two classes; give the first with --class")
        return [("all samples", np.arange(len(lay.vectors)))]
    out = []
    for c in [cls] + ([] if versus is None else [versus]):
        k = m.class_index(c)
        rows = class_rows(lay.predicted, lay.attributions, k)
        if not len(rows):
            raise SynthvizError(f"no sample's attribution favours class {m.class_name(k)}; pick a class the "
                                "model predicts for some indexed images")
        out.append((m.class_name(k), rows))
    return out


@register_technique("atlas", example={"images": SMALL, "layer": "_blocks.3", "grid": 3, "size": 32, "steps": 2,
                                      "method": "pca", "samples_per_image": 4, "index_size": 64, "min_count": 2})
def atlas(model: ModelArg = None, *, run: str | None = None, images: Images = None, layer: str | None = None,
          out: str | None = None, grid: int = 20, target: int | str | None = None, versus: int | str | None = None,
          min_count: int = MIN_COUNT, method: str = "umap", max_samples: int = 100_000, whiten: bool = False,
          size: int = 64, steps: int = 128, batch: int = 16, examples: int = 6, samples_per_image: int = 4,
          index_size: int = 128, seed: int = 0, overwrite: bool = False, progress: bool | str = False,
          ray: str | None = None) -> Result:
    """An activation atlas of ``layer``: the samples of the index ``run`` (made with
    ``--samples-per-image``; or ``images``, indexed on the fly at ``index_size`` with
    ``samples_per_image``) laid out by ``method`` (umap, else tsne; pca), binned on a ``grid`` x
    ``grid`` grid (cells with fewer than ``min_count`` samples dropped; 6, as Lucid's atlases), each
    cell's mean activation rendered (``size`` px, ``steps`` steps, ``batch`` cells at a time; ``whiten``: by the samples'
    covariance). ``target``: a class atlas (samples whose attribution favours the class); with
    ``versus``, two class atlases side by side on one layout. Files go to the folder ``out``
    (atlas.png, icons/, cells.csv, cells.npy, samples.csv, index.html; None: nowhere). ``ray``: the
    icon renders as Ray tasks (``auto``, ``local`` or an address)."""
    import torch

    from ..checks import choice, positive
    from ..cost import check_size
    from ..dataset.atlas import METHODS, layout
    from ..dataset.atlas_page import write_atlas
    from ..io import claim_folder

    choice("method", method, METHODS)
    if versus is not None and target is None:
        raise SynthvizError("--versus compares two classes; give the first with --class")
    for name, value in (("grid", grid), ("min_count", min_count), ("size", size), ("batch", batch),
                        ("examples", examples), ("max_samples", max_samples)):
        positive(name, value, integer=True)
    with contextlib.ExitStack() as stack:  # the output is claimed before any work
        folder = Path(out) if out is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if out is not None:
            stack.enter_context(claim_folder(folder, ("index.html", "cells.csv", "atlas.png"), overwrite, "an atlas"))
        r = stack.enter_context(index_of(run, images, model, layer, index_size, samples_per_image,
                                         need="an index with samples: pass run=RUN (made by `synthviz index --samples-per-image 4`)"))
        layer = r.check_layer(layer)
        m = load_model(r.model if model is None or isinstance(model, str) else model, r.settings["weights"])
        check_size(m, size)  # these before the layout, not after it
        for c in (target, versus):
            if c is not None:
                m.class_index(c)
        lay = layout(r, layer, method=method, max_samples=max_samples, seed=seed)
        sides = _sides(m, lay, target, versus)
        made = write_atlas(r, m, folder, layer, lay, sides, grid=grid, min_count=min_count, size=size,
                           steps=steps, batch=batch, whiten=whiten, examples=examples, seed=seed,
                           progress=bool(progress), ray=ray)
    icons = torch.cat(made["icons"])
    labels = [f"{t}: {x},{y}" for (t, _), cells in zip(sides, made["cells"]) for x, y in cells.xy.tolist()]
    return Result(images=icons, labels=labels, figure=made["picture"], objective=f"direction×cos²({layer})",
                  technique="atlas", info={"layer": layer, "method": lay.method, "grid": grid, "samples": len(lay.vectors),
                                           "cells": [len(c.count) for c in made["cells"]],
                                           "classes": [t for t, _ in sides],
                                           "out": None if out is None else os.fspath(out)})
