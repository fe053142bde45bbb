"""The two streaming passes of a concepts run, on the dataset pass's kit.

Images come from :func:`synthviz.dataset.sources.batch_loader` (fixed batches, unreadable files
skipped and listed), :func:`synthviz.dataset.index.drive` shows the progress bar and checkpoints,
and a :class:`Stream` is the state it drives (a :class:`~synthviz.dataset.state.Checkpointed`, as the
index's ``Pass``): memory-mapped arrays in the run folder plus a small JSON of the batches done and
the images skipped, so Ctrl-C and the same call resume.

* :func:`collect`: every position of the layer (or every patch token, through the spatial view of
  :mod:`synthviz.tokens`) is a sample: ``activations.npy`` (N·h·w, C), image ``i``'s rows at
  ``i·h·w ...``; rows of skipped images are NaN.
* :func:`encode`: each image's coefficients against a learnt dictionary, reduced to the largest over
  positions (N, K), and gradient × coefficient: concept k's share of the predicted class's score,
  ``Σ_positions z_k · scale · <∂score/∂A, atom_k>`` (N, K) (NaN with ``importance="sobol"``: CRAFT's
  total Sobol indices are estimated after, on a few images per class, :mod:`synthviz.concepts.importance`),
  and the predicted class (N,).

With ``ray`` (``auto``, ``local`` or a cluster address) both passes (and, with this module's
:func:`_loader` and :func:`_on_ray`, the Sobol stage of :mod:`synthviz.concepts.importance`) run
on Ray Data through the dataset pass's :func:`synthviz.dataset.distributed.ray_map` (the same fixed batches, merged in
batch order into the same :class:`Stream`): the workers run :class:`ActivationRows` and
:class:`EncodeRows`, whose per-batch computation is the local pass's own (:func:`layer_positions`,
:func:`encode_batch`), so the arrays are the same.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ..dataset.distributed import RowWorker, ray_map, row_indices
from ..dataset.forward import index_tap
from ..dataset.index import default_workers, drive
from ..dataset.sources import Source, batch_loader
from ..dataset.state import Checkpointed, damaged, open_array
from ..io import atomic_write
from ..layers import LOGITS, Tap, view_of
from ..models import Model
from .dictionary import Dictionary

RUN = "concepts run"  # how a damaged file's error names the run folder


class Stream(Checkpointed):
    """The state of one pass named ``name``: arrays ``{key: (shape, dtype, fill)}`` as
    ``out/<name>-<key>.npy`` memmaps (the index's :func:`~synthviz.dataset.state.open_array`: a
    damaged one is one line offering a restart), written by ``consume(arrays, kept, results)``."""

    def __init__(self, out: Path, name: str, source: Source, batch_size: int, arrays: dict, consume: Callable,
                 fresh: bool):
        super().__init__(out, source, batch_size)
        self.name, self.consume = name, consume
        self.path = out / f"{name}.state.json"
        state = None if fresh or not self.path.exists() else self._read()
        self.arrays = {key: open_array(out, f"{name}-{key}.npy", shape, state is None, dtype, fill, kind=RUN)
                       for key, (shape, dtype, fill) in arrays.items()}
        if state is not None:
            self.batches_done, self.skipped = int(state["batches_done"]), [tuple(s) for s in state["skipped"]]

    def _read(self) -> dict:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            int(state["batches_done"]), list(state["skipped"])  # both there and readable, or it is damaged
            return state
        except (OSError, ValueError, TypeError, KeyError):
            raise damaged(self.out, f"{self.path.name} cannot be read", kind=RUN) from None

    def merge(self, kept, failed, results) -> None:
        if len(kept):
            self.consume(self.arrays, list(kept), results)

    def save(self) -> None:
        for arr in self.arrays.values():
            arr.flush()
        atomic_write(self.path, json.dumps({"batches_done": self.batches_done, "skipped": self.skipped}))

    def finish(self) -> None:
        """Drop the pass's state file once its results are used."""
        self.path.unlink(missing_ok=True)


def _loader(source: Source, model: Model, size: int, batch_size: int, workers: int | None, start: int):
    return batch_loader(source.paths, size, batch_size, default_workers() if workers is None else workers,
                        start_batch=start, min_side=model.min_size)


def positions(act: torch.Tensor) -> torch.Tensor:
    """A layer's view (B, C, h, w) or (B, C) as samples (B, h·w, C)."""
    return act.flatten(2).transpose(1, 2) if act.dim() > 2 else act[:, None]


def layer_positions(model: Model, tap: Tap, layer: str, images: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, S, S) through an :func:`~synthviz.dataset.forward.index_tap` of ``layer`` (hooked):
    the layer's view at every position, (B, h·w, C) float32 on the CPU."""
    with torch.inference_mode():
        raw = tap(images.to(model.device))[layer]
        return positions(view_of(model, layer, raw, model.input_hw(images))).float().cpu()


class ActivationRows(RowWorker):
    """:func:`collect` on a Ray worker: column ``a``, each batch's (kept, h·w, C) float32 as raw bytes."""

    def __init__(self, model: Model, size: int, threads: int, layer: str):
        super().__init__(model, size, threads)
        self.layer, self.tap = layer, index_tap(self.model, [layer])

    def compute(self, images: torch.Tensor, kept: list[int], out: dict[str, list]) -> None:
        acts = torch.empty(0)
        if kept:
            with self.model.evaluating(), self.tap:
                acts = layer_positions(self.model, self.tap, self.layer, images)
        out.setdefault("a", []).append(acts.numpy().astype(np.float32).tobytes())


def _on_ray(state: Stream, model: Model, worker: type[RowWorker], kwargs: dict, decode_row, address: str,
            progress: bool, checkpoint_every: float, on_batch, description: str) -> None:
    """Drive ``state``'s remaining batches through :func:`ray_map` (the dataset pass on Ray Data)."""
    batches = ray_map(state, model, worker, kwargs, decode_row, state.batch_size, address)
    with contextlib.closing(batches):
        drive(state, batches, len(state.source), progress, checkpoint_every, on_batch, lambda item: item, description)


def collect(out: Path, source: Source, model: Model, layer: str, shape: tuple[int, int], *, size: int,
            batch_size: int, workers: int | None, fresh: bool, progress: bool, checkpoint_every: float,
            on_batch=None, ray: str | None = None) -> Stream:
    """Pass 1: every position's activation into ``activations.npy``. ``shape``: (h·w, C). ``ray``:
    run it on Ray Data (``auto``, ``local`` or an address) instead of local DataLoader ``workers``."""
    hw, channels = shape

    def consume(arrays, kept, acts):
        rows = (np.asarray(kept)[:, None] * hw + np.arange(hw)).ravel()
        arrays["activations"][rows] = acts.reshape(-1, channels).numpy()

    state = Stream(out, "collect", source, batch_size, {"activations": ((len(source) * hw, channels), np.float32, np.nan)},
                   consume, fresh)
    if ray is not None:
        def decode(row):
            first, kept, failed = row_indices(row)
            acts = np.frombuffer(row["a"], dtype=np.float32).reshape(len(kept), hw, channels)
            return first, kept, failed, torch.from_numpy(acts.copy()) if kept else None

        _on_ray(state, model, ActivationRows, {"size": size, "layer": layer}, decode, ray, progress,
                checkpoint_every, on_batch, "concepts: activations")
        return state
    loader = _loader(source, model, size, batch_size, workers, state.batches_done)
    with model.evaluating(), index_tap(model, [layer]) as tap:

        def step(item):
            first, images, kept, failed = item
            if not len(kept):
                return first, kept, failed, None
            return first, kept, failed, layer_positions(model, tap, layer, images)

        drive(state, loader, len(source), progress, checkpoint_every, on_batch, step, "concepts: activations")
    return state


def gradient_step(model: Model, tap: Tap, layer: str, dictionary: Dictionary, images: torch.Tensor,
                  target: int | None = None):
    """One batch (B, 3, S, S) through a ``Tap(model, [layer, LOGITS], grad="leaf")``: (coefficients
    (B, h·w, K), gradient × coefficient (B, K), classes (B,), the layer's grid (h, w)); the score is
    the predicted class's logit, or class ``target``'s."""
    with torch.enable_grad():
        acts = tap(images.to(model.device))
        logits = acts[LOGITS]
        classes = logits.argmax(1) if target is None else torch.full((len(logits),), target, device=logits.device)
        score = logits.gather(1, classes[:, None]).sum()
        grad = torch.autograd.grad(score, acts[layer])[0]
    a, g = positions(acts[layer].detach()).float().cpu(), positions(grad).float().cpu()
    z = dictionary.encode(a.reshape(-1, a.shape[-1])).reshape(*a.shape[:2], -1)
    share = (z * dictionary.scale * (g @ dictionary.atoms.T)).sum(1)
    grid = tuple(acts[layer].shape[2:]) if acts[layer].dim() == 4 else (1, 1)
    return z, share, classes.cpu(), grid


def code_step(model: Model, dictionary: Dictionary, images: torch.Tensor):
    """One batch (B, 3, S, S), forward only: (coefficients (B, h·w, K), classes (B,): the predicted ones)."""
    with torch.no_grad(), Tap(model, [dictionary.layer, LOGITS]) as tap:
        acts = tap(images.to(model.device))
    a = positions(acts[dictionary.layer]).float().cpu()
    z = dictionary.encode(a.reshape(-1, a.shape[-1])).reshape(*a.shape[:2], -1)
    return z, acts[LOGITS].argmax(1).cpu()


def encode_batch(model: Model, dictionary: Dictionary, images: torch.Tensor, tap: Tap | None, importance: str,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch (B, 3, S, S) of :func:`encode`: (largest coefficient (B, K), importance (B, K),
    classes (B,)); ``tap``: a hooked ``Tap(model, [layer, LOGITS], grad="leaf")`` (None for sobol,
    whose importance is NaN here: :mod:`synthviz.concepts.importance` estimates it per class after)."""
    if importance == "sobol":
        z, classes = code_step(model, dictionary, images)
        share = torch.full((len(z), dictionary.concepts), float("nan"))
    else:
        z, share, classes, _ = gradient_step(model, tap, dictionary.layer, dictionary, images)
    return z.amax(1).numpy(), share.numpy(), classes.numpy()


class EncodeRows(RowWorker):
    """:func:`encode` on a Ray worker: columns ``best``, ``share`` ((kept, K) float32) and ``classes``
    ((kept,) int64) as raw bytes."""

    def __init__(self, model: Model, size: int, threads: int, dictionary: Dictionary, importance: str, seed: int):
        super().__init__(model, size, threads)
        self.dictionary, self.importance, self.seed = dictionary, importance, seed

    def compute(self, images: torch.Tensor, kept: list[int], out: dict[str, list]) -> None:
        k = self.dictionary.concepts
        found = (np.zeros((0, k), np.float32), np.zeros((0, k), np.float32), np.zeros(0, np.int64))
        if kept:
            sobol = self.importance == "sobol"
            grad = nullcontext() if sobol else Tap(self.model, [self.dictionary.layer, LOGITS], grad="leaf")
            with self.model.evaluating(), grad as tap:
                found = encode_batch(self.model, self.dictionary, images, tap, self.importance, self.seed)
        for key, value, dtype in zip(("best", "share", "classes"), found, (np.float32, np.float32, np.int64)):
            out.setdefault(key, []).append(np.asarray(value, dtype=dtype).tobytes())


def encode(out: Path, source: Source, model: Model, dictionary: Dictionary, *, size: int, batch_size: int,
           workers: int | None, fresh: bool, progress: bool, checkpoint_every: float, on_batch=None,
           importance: str = "gradient", seed: int = 0, ray: str | None = None) -> Stream:
    """Pass 2: each image's largest coefficient per concept, its importance per concept (gradient ×
    coefficient; NaN with ``importance="sobol"``, estimated after by
    :func:`synthviz.concepts.importance.sobol_pass`), predicted class. ``ray``: on Ray Data, as :func:`collect`."""
    n, k = len(source), dictionary.concepts

    def consume(arrays, kept, results):
        best, share, classes = results
        idx = np.asarray(kept)
        arrays["best"][idx], arrays["share"][idx], arrays["classes"][idx] = best, share, classes

    arrays = {"best": ((n, k), np.float32, np.nan), "share": ((n, k), np.float32, np.nan), "classes": ((n,), np.int64, -1)}
    state = Stream(out, "encode", source, batch_size, arrays, consume, fresh)
    if ray is not None:
        def decode(row):
            first, kept, failed = row_indices(row)
            shapes = {"best": ((len(kept), k), np.float32), "share": ((len(kept), k), np.float32),
                      "classes": ((len(kept),), np.int64)}
            found = tuple(np.frombuffer(row[key], dtype=dtype).reshape(shape).copy() for key, (shape, dtype) in shapes.items())
            return first, kept, failed, found if kept else None

        _on_ray(state, model, EncodeRows, {"size": size, "dictionary": dictionary, "importance": importance,
                                           "seed": seed}, decode, ray, progress, checkpoint_every, on_batch,
                "concepts: encode")
        return state
    loader = _loader(source, model, size, batch_size, workers, state.batches_done)
    sobol = importance == "sobol"  # (its own passes: no gradient Tap hooked meanwhile)
    with model.evaluating(), nullcontext() if sobol else Tap(model, [dictionary.layer, LOGITS], grad="leaf") as tap:

        def step(item):
            first, images, kept, failed = item
            if not len(kept):
                return first, kept, failed, None
            return first, kept, failed, encode_batch(model, dictionary, images, tap, importance, seed)

        drive(state, loader, len(source), progress, checkpoint_every, on_batch, step, "concepts: encode")
    return state
