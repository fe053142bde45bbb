"""The indexing pass on Ray Data: the image list becomes a Ray dataset with one row per batch (the
same fixed slices ``[b * batch_size, (b + 1) * batch_size)`` of the image list as a local pass),
``map_batches`` runs a callable class that holds the model on every worker (one per CPU, or per GPU
when the cluster has GPUs) and turns each row into reduced activations: per image and unit the
pooled value (maximum or mean) and the position of the maximum. The driver streams the results
back and merges them into the same :class:`~synthviz.dataset.stats.UnitStats`, feature memmaps
and skipped list as a local pass, so the files are the same (RelMax's relevance, ``--relevance``,
included: the workers compute it too, :mod:`.relevance`).

Why the files are identical to a local pass, whatever order the workers finish in:

- each forward pass sees exactly the batch a local pass does (same images, same batch size, one
  torch thread per worker), so the activations are the same bits;
- results are merged in batch order (Ray Data keeps the order, and the driver re-orders anything
  that comes early), so the running mean/std accumulate in the same order; top-k / bottom-k
  are ordered by (value, image index) and do not depend on the order at all.

:func:`ray_map` is the one pass over images on Ray: a :class:`RowWorker` subclass says what each
worker computes per batch (:class:`BatchForward` here for the index; the concepts passes of
:mod:`synthviz.concepts.stream` have theirs), and the caller decodes the rows and drives its own
state with :func:`synthviz.dataset.index.drive`.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Iterator

import numpy as np
import torch

from ..cluster import import_ray, start_ray
from ..errors import SynthvizError
from ..models import Model
from .forward import forward_batch, index_tap
from .relevance import relevance_batch, relevance_key


def batch_rows(paths: list[str], batch_size: int, start_batch: int = 0) -> list[dict]:
    """One row per remaining batch: ``{"batch": b, "first": index of its first image, "paths": [...]}``."""
    starts = range(start_batch * batch_size, len(paths), batch_size)
    return [{"batch": start_batch + b, "first": first, "paths": paths[first : first + batch_size]}
            for b, first in enumerate(starts)]


class RowWorker(abc.ABC):
    """The base of a ``map_batches`` callable of a pass over images: holds the model (built once per
    worker, one torch thread per CPU it has) and turns rows of image paths (:func:`batch_rows`) into
    result rows: ``batch``, ``kept`` (indices read), ``failed``/``reasons`` (indices and why not),
    and what :meth:`compute` adds. A pass on Ray is a subclass (:class:`BatchForward` for the index;
    the concepts passes, :mod:`synthviz.concepts.stream`) run by :func:`ray_map`."""

    def __init__(self, model: Model, size: int, threads: int):
        from ..models import resolve_device

        torch.set_num_threads(threads)
        self.model = model.to(resolve_device(None))
        self.size = size

    @abc.abstractmethod
    def compute(self, images: torch.Tensor, kept: list[int], out: dict[str, list]) -> None:
        """Append this batch's results (images (n, 3, S, S) of the indices ``kept``, possibly none) to
        ``out``'s columns, one item per column and batch (raw bytes travel best); every pass says what."""

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, list]:
        from .sources import load_batch

        out: dict[str, list] = {"batch": [], "kept": [], "failed": [], "reasons": []}
        for batch, first, paths in zip(rows["batch"], rows["first"], rows["paths"]):
            # the same size rule as a local pass: images below the model's minimum side are skipped
            _, images, kept, failed = load_batch([str(p) for p in paths], int(first), self.size, self.model.min_size)
            out["batch"].append(int(batch))
            out["kept"].append(np.asarray(kept, dtype=np.int64))
            out["failed"].append(np.asarray([i for i, _ in failed], dtype=np.int64))
            out["reasons"].append([r for _, r in failed])
            self.compute(images, kept, out)
        return out


def row_indices(row: dict) -> tuple[int, list[int], list[tuple[int, str]]]:
    """A result row's ``(first, kept, failed)``: the batch's first image, the indices read, (index, reason)."""
    kept = [int(i) for i in np.asarray(row["kept"]).reshape(-1)]
    failed = [(int(i), str(r)) for i, r in zip(np.asarray(row["failed"]).reshape(-1), list(row["reasons"]))]
    return min(kept + [i for i, _ in failed]), kept, failed


class BatchForward(RowWorker):
    """The index's ``map_batches`` callable: turns rows of image paths into reduced activations;
    per layer the values ``v:<layer>`` (float32) and positions ``p:<layer>`` (int64) as (kept, C)
    raw bytes (and the activation samples with ``samples``; with ``relevance``, a class, each
    unit's CRP relevance for it as the same columns of ``<layer>#relevance``: :mod:`.relevance`)."""

    def __init__(self, model: Model, names: list[str], size: int, reduce: str, threads: int, samples: int = 0,
                 relevance: int | None = None):
        super().__init__(model, size, threads)
        self.names, self.reduce, self.samples, self.relevance = names, reduce, samples, relevance
        self.tap = index_tap(self.model, names)

    def compute(self, images: torch.Tensor, kept: list[int], out: dict[str, list]) -> None:
        results = {}
        if kept:
            with self.model.evaluating(), self.tap:
                results = forward_batch(self.model, self.tap, images, self.reduce)
            if self.relevance is not None:  # the local pass's own step (index._run_local)
                results.update(relevance_batch(self.model, images, self.names, self.relevance))
        if self.samples:
            self._add_samples(out, images, kept)
        keys = self.names + ([relevance_key(n) for n in self.names] if self.relevance is not None else [])
        for name in keys:
            v, p = results.get(name, (torch.empty(0), torch.empty(0, dtype=torch.long)))
            out.setdefault(f"v:{name}", []).append(v.numpy().astype(np.float32).tobytes())
            out.setdefault(f"p:{name}", []).append(p.numpy().astype(np.int64).tobytes())

    def _add_samples(self, out: dict[str, list], images: torch.Tensor, kept: list[int]) -> None:
        """The batch's activation samples as raw bytes: ``s:pred`` and per layer ``s:v:``, ``s:p:``, ``s:a:``."""
        from .samples import sample_batch

        found = sample_batch(self.model, images, kept, self.names, self.samples) if kept else {}
        empty = (torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0))
        out.setdefault("s:pred", []).append(found.get("predicted", torch.empty(0, dtype=torch.long)).numpy()
                                            .astype(np.int64).tobytes())
        for name in self.names:
            v, p, a = found.get(name, empty)
            out.setdefault(f"s:v:{name}", []).append(v.numpy().astype(np.float32).tobytes())
            out.setdefault(f"s:p:{name}", []).append(p.numpy().astype(np.int64).tobytes())
            out.setdefault(f"s:a:{name}", []).append(a.numpy().astype(np.float32).tobytes())


def in_order(rows: Iterator[dict], start: int) -> Iterator[dict]:
    """Yield ``rows`` sorted by their ``batch`` number from ``start`` on, holding back only those
    that come early (Ray Data keeps the order, so normally nothing waits)."""
    pending, expected = {}, start
    for row in rows:
        pending[int(row["batch"])] = row
        while expected in pending:
            yield pending.pop(expected)
            expected += 1
    if pending:
        raise SynthvizError(f"the Ray pass lost batch {expected}; run the same command again to resume")


def decode(row: dict, channels: dict[str, int], samples: int = 0):
    """A result row back to ``(first, kept, failed, {layer: (values (n, C), positions (n, C))})``,
    and the batch's activation samples when ``samples`` (see :func:`synthviz.dataset.samples.sample_batch`)."""
    first, kept, failed = row_indices(row)
    results = {}
    for name, c in channels.items():
        v = np.frombuffer(row[f"v:{name}"], dtype=np.float32).reshape(len(kept), c)
        p = np.frombuffer(row[f"p:{name}"], dtype=np.int64).reshape(len(kept), c)
        results[name] = (torch.from_numpy(v.copy()), torch.from_numpy(p.copy()))
    if not samples:
        return first, kept, failed, results
    n = len(kept)
    found = {"predicted": torch.from_numpy(np.frombuffer(row["s:pred"], dtype=np.int64).copy())}
    for name, c in channels.items():
        found[name] = (torch.from_numpy(np.frombuffer(row[f"s:v:{name}"], dtype=np.float32).reshape(n, samples, c).copy()),
                       torch.from_numpy(np.frombuffer(row[f"s:p:{name}"], dtype=np.int64).reshape(n, samples).copy()),
                       torch.from_numpy(np.frombuffer(row[f"s:a:{name}"], dtype=np.float32).reshape(n, samples).copy()))
    return first, kept, failed, results, found if n else None


def ray_batches(state, model: Model, names: list[str], size: int, reduce: str, batch_size: int, address: str,
                cpus_per_worker: int = 1, samples: int = 0, relevance: int | None = None) -> Iterator[tuple]:
    """Run the index pass's remaining batches on Ray Data (:func:`ray_map` with :class:`BatchForward`),
    yielding each batch's ``(first, kept, failed, {layer: (values, positions)})`` in batch order for
    the pass's driver (:func:`synthviz.dataset.index.drive`); ``relevance``: a class whose CRP
    relevance per unit comes too, under ``<layer>#relevance`` (RelMax), in the same pass. Close the
    generator when done (``contextlib.closing``): that restores Ray Data's settings and stops a
    session it started."""
    channels = {n: state.layers[n]["channels"] for n in names}
    if relevance is not None:
        channels.update({relevance_key(n): channels[n] for n in names})
    kwargs = {"names": names, "size": size, "reduce": reduce, "samples": samples, "relevance": relevance}
    yield from ray_map(state, model, BatchForward, kwargs, lambda row: decode(row, channels, samples), batch_size,
                       address, cpus_per_worker)


def ray_map(state, model: Model, worker: type[RowWorker], kwargs: dict, decode_row, batch_size: int, address: str,
            cpus_per_worker: int = 1) -> Iterator:
    """THE pass over images on Ray Data: the remaining batches of ``state`` (``state.source.paths``
    from ``state.batches_done`` on, fixed slices of ``batch_size``) become rows of a Ray dataset,
    ``map_batches`` runs ``worker(model=..., threads=..., **kwargs)`` on every worker (one per CPU,
    or per GPU when the cluster has GPUs) and each result row, in batch order, is yielded as
    ``decode_row(row)``. ``address``: ``auto``, ``local`` or ``ray://HOST:PORT``; a Ray session
    already started in this process is used as it is. Close the generator when done."""
    started = start_ray(address, data=True)
    ray = import_ray(data=True)
    try:
        rows = batch_rows(state.source.paths, batch_size, state.batches_done)
        if not rows:
            return
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        workers = min(len(rows), gpus or max(1, int(resources.get("CPU", 1)) // cpus_per_worker))
        resource = {"num_gpus": 1} if gpus else {"num_cpus": cpus_per_worker}
        # the workers get a CPU copy; the caller's model stays where it is
        shipped = model if model.device.type == "cpu" else copy.deepcopy(model).to("cpu")
        context = ray.data.DataContext.get_current()
        saved = context.execution_options.preserve_order, context.enable_progress_bars
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        try:
            # small blocks (at most 4 batches): results stream back batch by batch, every worker gets work
            blocks = max(min(len(rows), 4 * workers), -(-len(rows) // 4))
            data = ray.data.from_items(rows, override_num_blocks=blocks)
            results = data.map_batches(worker, batch_size=1, concurrency=workers, **resource,
                                       fn_constructor_kwargs={"model": shipped, "threads": cpus_per_worker, **kwargs})
            for row in in_order(results.iter_rows(), state.batches_done):
                yield decode_row(row)
        finally:
            context.execution_options.preserve_order, context.enable_progress_bars = saved
    finally:
        if started:
            ray.shutdown()
