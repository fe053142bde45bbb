"""Indexing a dataset: one streaming pass that records what every unit of some layers responds to.

For each image (resized to ``size`` x ``size``, no cropping) the forward pass runs only as far
as the deepest requested layer. Each channel's activation is reduced to one value per image (its
maximum over positions, or the mean) and the position of its maximum is kept, so the patch that
excited it can be cut out later. Memory stays flat in the number of images: per-unit top-k and
bottom-k are merged batch by batch, mean/std are running, and the per-image vectors go to a
memory-mapped ``.npy`` file.

The run folder holds (see :mod:`synthviz.dataset.run` to read it back)::

    manifest.json          settings, layers (channels, grid, receptive field), counts
    images.csv             index,path,label: row i of every array is image i (absolute paths)
    features/<layer>.npy   (N, C) float32: the reduced activation of every unit for every image (NaN: skipped)
    samples/               with ``samples_per_image``: activation vectors at random positions, their
                           attributions and each image's predicted class (:mod:`.samples`)
    state.npz              top/bottom-k values, image indices, positions; running mean and m2
    topk.csv, bottomk.csv  layer,unit,rank,path,value,x,y (rank 1 = highest / lowest)
    units.csv              layer,unit,mean,std,min,max
    relmax.csv             with ``relevance=CLASS``: each unit's top images by its CRP relevance for the
                           class (RelMax, :mod:`.relevance`), the columns of topk.csv
    skipped.txt            path<TAB>reason of every image that could not be read, or is below
                           the model's minimum side (:func:`synthviz.io.size_problem`)

An interrupted pass (Ctrl-C, a kill) resumes from its last checkpoint with the same command and
ends with byte-identical files: batches are fixed slices of the image list. A folder damaged
otherwise is reported on resume (:mod:`synthviz.dataset.state`); a dataset with no usable image
is an error listing the files.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..checks import choice, non_negative, positive
from ..cost import check_size
from ..errors import BadImage, BadValue
from ..io import atomic_write, skipped_note
from ..layers import default_layer
from ..models import DEFAULT_MODEL, Model, load_model
from ..progress import progress as progress_bar
from .forward import forward_batch, index_tap
from .outputs import write_outputs, write_skipped
from .receptive import receptive_field
from .relevance import relevance_batch, relevance_key, write_relmax
from .sources import batch_loader, find_images
from .state import Checkpointed, Pass, check_out, load_state, prepare, read_manifest
from .stats import REDUCTIONS

FORMAT = 1


def _settings(model: Model, weights, layers, size, reduce, top_k, batch_size, samples: int = 0,
              relevance: int | None = None) -> dict:
    settings = {"format": FORMAT, "model": model.name, "weights": str(weights), "layers": list(layers), "size": size,
                "reduce": reduce, "top_k": top_k, "batch_size": batch_size}
    if samples:  # only when asked, so runs made without samples resume as they were
        settings["samples_per_image"] = samples
    if relevance is not None:  # (likewise)
        settings["relevance"] = relevance
    return settings


def _layer_info(model: Model, layers: Sequence[str], size: int) -> dict[str, dict]:
    """Per layer: the shape positions are counted in ((C, H, W) maps, (N, C) tokens, (C,) vectors),
    the channels, the measured receptive field and, for token layers, the token grid
    (``{"prefix", "h", "w"}``: class tokens first, then an h x w grid of patches over the image)."""
    from ..tokens import token_grid

    probe = torch.zeros(1, 3, size, size, device=model.device)
    with model.evaluating(), index_tap(model, layers) as tap, torch.no_grad():
        acts = tap(probe)
    info = {}
    for name in layers:
        act = acts[name]
        if act.dim() == 4 and model.channels_last is not None and model.channels_last(name):
            act = act.permute(0, 3, 1, 2)
        shape = tuple(act.shape[1:])
        channels = shape[0] if len(shape) != 2 else shape[1]
        info[name] = {"shape": list(shape), "channels": int(channels),
                      "receptive_field": receptive_field(model, name, size).to_dict()}
        grid = token_grid(shape[0], model.input_hw(probe), model.prefix_tokens) if len(shape) == 2 else None
        if grid is not None:
            info[name]["tokens"] = {"prefix": grid.prefix, "h": grid.h, "w": grid.w}
    return info


def default_workers() -> int:
    """DataLoader workers sized to the machine: one core is left to the forward pass."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def index(dataset: str | os.PathLike, out: str | os.PathLike = "run", *,
          model: str | Model | torch.nn.Module = DEFAULT_MODEL, weights: str = "default",
          layers: str | Sequence[str] | None = None, size: int = 224, reduce: str = "max", top_k: int = 16,
          batch_size: int = 32, workers: int | None = None, device: str | None = None,
          ray: str | None = None, overwrite: bool = False, progress: bool = True,
          checkpoint_every: float = 30.0, on_batch: Callable[[int], None] | None = None,
          samples_per_image: int = 0, relevance: int | str | None = None) -> Path:
    """Index ``dataset`` (a folder, a glob or a .txt/.csv list) into the folder ``out``.

    Args:
        layers: layer names (a list or ``"a,b"``); default the model's ``mid`` layer.
        size: images are resized to ``size`` x ``size`` (no cropping).
        reduce: a channel's value per image: ``max`` over positions or ``mean``.
        top_k: examples kept per unit (the same number of lowest ones too).
        workers: DataLoader worker processes reading images (default: the cores less one).
        ray: run the same pass on Ray Data (``"auto"``, ``"local"`` or a cluster address), same files.
        checkpoint_every: seconds between checkpoints; an interrupted pass resumes from the last.
        on_batch: called with the number of batches done after each batch (tests use it to interrupt).
        samples_per_image: also keep, per image and layer, the activation vector at this many random
            positions and its attribution to the predicted class (:mod:`synthviz.dataset.samples`;
            one more forward and backward per layer and batch), the material of an activation atlas.
        relevance: a class (index or name): also rank each unit's images by its CRP relevance for that
            class (RelMax, :mod:`synthviz.dataset.relevance`; one LRP forward and backward per batch)
            into ``relmax.csv``, beside the ActMax images of ``topk.csv``; with ``ray`` the workers
            compute it in the same pass.

    Returns the run folder. Re-running the same call resumes; a finished run is left as it is.
    Images that cannot be used are skipped and listed; when none can, it raises
    :class:`~synthviz.errors.BadImage` listing them.
    """
    _check_options(reduce, top_k, batch_size, size, workers)
    non_negative("samples_per_image", samples_per_image, integer=True)
    out = Path(out)
    check_out(out)
    source = find_images(dataset)  # an empty list or folder fails here, before the model loads
    m = load_model(model, weights, device)
    check_size(m, size)
    names = [n.strip() for n in layers.split(",")] if isinstance(layers, str) else list(layers or [])
    names = [n for n in names if n] or [default_layer(m, "mid")]
    target = None if relevance is None else m.class_index(relevance)
    settings = _settings(m, weights, names, size, reduce, top_k, batch_size, samples_per_image, target)
    fresh = prepare(out, settings, source, overwrite)
    if not fresh and read_manifest(out).get("status") == "complete":
        return out
    loader = None
    if ray is None:  # the reading workers start now and read ahead while the layers are measured
        start = 0 if fresh else int((load_state(out, {}) or {"batches_done": 0})["batches_done"])
        loader = iter(batch_loader(source.paths, size, batch_size, default_workers() if workers is None else workers,
                                   start_batch=start, min_side=m.min_size))
    info = _layer_info(m, names, size)
    manifest = {"settings": settings, "dataset": source.root, "count": len(source), "layers": info,
                "status": "partial"}
    if target is not None:
        manifest["relevance"] = {"class": target, "name": m.class_name(target)}
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    kept = {**info, **({relevance_key(n): info[n] for n in names} if target is not None else {})}
    state = Pass(out, source, kept, top_k, batch_size, fresh, _sample_files(out, info, len(source), samples_per_image))
    if ray is not None:
        from .distributed import ray_batches

        with contextlib.closing(ray_batches(state, m, names, size, reduce, batch_size, ray,
                                            samples=samples_per_image, relevance=target)) as batches:
            drive(state, batches, len(state.source), progress, checkpoint_every, on_batch, lambda batch: batch)
    else:
        _run_local(state, m, names, reduce, loader, progress, checkpoint_every, on_batch, samples_per_image, target)
    _refuse_empty(state, dataset)
    write_outputs(out, source, {n: state.stats[n] for n in info}, state.features, info, state.skipped)
    if target is not None:
        write_relmax(out, source, state.stats, info)
    manifest.update(status="complete", skipped=len(state.skipped))
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return out


def _check_options(reduce: str, top_k: int, batch_size: int, size: int, workers: int | None) -> None:
    """The options of :func:`index`, checked before anything is read or loaded."""
    choice("reduction", reduce, REDUCTIONS)
    positive("top_k", top_k, integer=True)
    positive("batch_size", batch_size, integer=True)
    non_negative("workers", workers, integer=True)
    if positive("size", size, integer=True) < 8:
        raise BadValue(f"size must be at least 8, not {size}")


def _refuse_empty(state: Pass, dataset) -> None:
    """A pass that could read no image is an error listing why, not an empty index. The list is
    written to ``skipped.txt`` and the checkpoint dropped, so the same command reads them again."""
    if len(state.skipped) < len(state.source):
        return
    paths = state.source.paths
    skipped = [(paths[i], reason) for i, reason in sorted(state.skipped)]
    write_skipped(state.out, state.source, state.skipped)
    state.forget()
    raise BadImage(f"nothing to index in {dataset}: {skipped_note(skipped, limit=3)}; "
                   f"all listed in {state.out / 'skipped.txt'}; use PNG or JPEG files the model can read")


def drive(state: Checkpointed, batches, total_images: int, progress: bool, checkpoint_every: float,
          on_batch: Callable[[int], None] | None, step: Callable, description: str = "index") -> None:
    """Feed ``batches`` (first, payload...) through ``step`` into ``state`` with a progress bar
    (named ``description``) and periodic checkpoints; on Ctrl-C the last complete batch is
    checkpointed before re-raising."""
    done = min(total_images, state.batches_done * state.batch_size)
    last = time.monotonic()
    try:
        with progress_bar(total_images, description, completed=done, unit="img", enabled=progress) as bar:
            for item in batches:
                first, kept, failed, results, *samples = step(item)
                state.add(first, kept, failed, results, *samples)
                bar.advance(len(kept) + len(failed))
                if time.monotonic() - last > checkpoint_every:
                    state.checkpoint()
                    last = time.monotonic()
                if on_batch is not None:
                    on_batch(state.batches_done)
    finally:
        state.checkpoint()


def _sample_files(out: Path, info: dict, images: int, samples: int):
    """The opener of the sample files :class:`Pass` takes (None without samples)."""
    if not samples:
        return None
    from .samples import SampleFiles

    return lambda new: SampleFiles(out, info, images, samples, new)


def _run_local(state: Pass, model: Model, names, reduce, loader, progress, checkpoint_every, on_batch,
               samples: int = 0, relevance: int | None = None) -> None:
    """The pass in this process: ``loader`` yields the batches from ``state.batches_done`` on;
    ``relevance``: the class whose CRP relevance per unit is kept too (RelMax)."""
    tap = index_tap(model, names)  # hooked per batch: the samples' own Tap must not meet its hooks

    def step(item):
        first, images, kept, failed = item
        with tap:
            results = forward_batch(model, tap, images, reduce) if len(kept) else state.empty()
        if relevance is not None and len(kept):
            results.update(relevance_batch(model, images, names, relevance))
        if not samples:
            return first, kept, failed, results
        from .samples import sample_batch

        return first, kept, failed, results, sample_batch(model, images, kept, names, samples) if len(kept) else None

    with model.evaluating():
        drive(state, loader, len(state.source), progress, checkpoint_every, on_batch, step)
