"""The Sobol stage of a concepts run: CRAFT's importance of each concept for each class, at a bounded cost.

CRAFT (Fel et al. 2023) estimates a class's concept importance on the images of that class: the
total Sobol indices of the class's logit over the concept coefficients
(:func:`synthviz.concepts.sobol.sobol_step`), averaged over the images (xplique's
``Craft.estimate_importance``). Each image costs ``designs · (K + 2)`` forward passes, so over a
whole dataset the estimate is capped: for each class the model predicts, the first ``per_class``
images predicted as that class (in dataset order; :func:`sobol_selection`), read again in fixed
batches; their B · designs · (K + 2) perturbed copies run in batches across images. The encoding
pass has given every image's predicted class already, so the selection is known before this stage
starts and is the same on resume.

The stage is a :class:`~synthviz.concepts.stream.Stream` named ``sobol`` (``sobol-share.npy``
(N, K), NaN for images not selected; ``sobol.state.json``): Ctrl-C and the same call resume it.
With ``ray`` it runs on Ray Data through :func:`synthviz.dataset.distributed.ray_map`, the workers
running :class:`SobolRows`, whose per-batch computation is the local stage's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..dataset.distributed import RowWorker, row_indices
from ..dataset.index import drive
from ..dataset.sources import Source
from ..models import Model
from .dictionary import Dictionary
from .sobol import sobol_step
from .stream import Stream, _loader, _on_ray

SOBOL_IMAGES = 16  # images per predicted class the Sobol indices are estimated on (0: every image of the class)


def sobol_selection(classes: np.ndarray, per_class: int) -> np.ndarray:
    """Indices (ascending) of the first ``per_class`` images of each predicted class (``classes`` (N,),
    -1: an image that was skipped); ``per_class`` 0: every image."""
    classes = np.asarray(classes)
    chosen = []
    for c in np.unique(classes[classes >= 0]):
        where = np.flatnonzero(classes == c)
        chosen.append(where if per_class == 0 else where[:per_class])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def class_sobol(model: Model, dictionary: Dictionary, images: torch.Tensor, classes, seed: int) -> np.ndarray:
    """Total Sobol indices (B, K) of each image's class ``classes`` (B,) for images (B, 3, S, S)."""
    return sobol_step(model, dictionary, images, torch.as_tensor(np.asarray(classes), dtype=torch.long),
                      seed=seed)[1].numpy()


class SobolRows(RowWorker):
    """:func:`sobol_pass` on a Ray worker: column ``share``, each batch's (kept, K) float32 as raw bytes;
    ``classes``: the class of every image of the stage's list."""

    def __init__(self, model: Model, size: int, threads: int, dictionary: Dictionary, classes: list[int], seed: int):
        super().__init__(model, size, threads)
        self.dictionary, self.classes, self.seed = dictionary, np.asarray(classes), seed

    def compute(self, images: torch.Tensor, kept: list[int], out: dict[str, list]) -> None:
        found = np.zeros((0, self.dictionary.concepts), np.float32)
        if kept:
            with self.model.evaluating():
                found = class_sobol(self.model, self.dictionary, images, self.classes[kept], self.seed)
        out.setdefault("share", []).append(np.asarray(found, dtype=np.float32).tobytes())


def sobol_pass(out: Path, source: Source, model: Model, dictionary: Dictionary, classes: np.ndarray, *,
               per_class: int, size: int, batch_size: int, workers: int | None, fresh: bool, progress: bool,
               checkpoint_every: float, on_batch=None, seed: int = 0, ray: str | None = None) -> Stream:
    """The Sobol stage over the images :func:`sobol_selection` picks from the predicted ``classes`` (N,):
    a :class:`Stream` whose ``arrays["share"]`` (N, K) holds each selected image's total Sobol
    indices for its class (NaN elsewhere). ``ray``: on Ray Data, as the other passes."""
    n, k = len(source), dictionary.concepts
    selected = sobol_selection(classes, per_class)
    chosen = Source([source.paths[i] for i in selected], [source.labels[i] for i in selected], source.root)
    wanted = np.asarray(classes)[selected]  # the class of each image of the stage's list

    def consume(arrays, kept, share):
        arrays["share"][selected[np.asarray(kept)]] = share

    state = Stream(out, "sobol", chosen, batch_size, {"share": ((n, k), np.float32, np.nan)}, consume, fresh)
    if ray is not None:
        def decode(row):
            first, kept, failed = row_indices(row)
            share = np.frombuffer(row["share"], dtype=np.float32).reshape(len(kept), k).copy()
            return first, kept, failed, share if kept else None

        _on_ray(state, model, SobolRows, {"size": size, "dictionary": dictionary, "classes": wanted.tolist(),
                                          "seed": seed}, decode, ray, progress, checkpoint_every, on_batch,
                "concepts: sobol")
        return state
    loader = _loader(chosen, model, size, batch_size, workers, state.batches_done)
    with model.evaluating():

        def step(item):
            first, images, kept, failed = item
            if not len(kept):
                return first, kept, failed, None
            return first, kept, failed, class_sobol(model, dictionary, images, wanted[kept], seed)

        drive(state, loader, len(chosen), progress, checkpoint_every, on_batch, step, "concepts: sobol")
    return state
