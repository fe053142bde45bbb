"""Indexing a dataset: one streaming pass that records what every unit of some layers responds to.

For each image (resized to ``size`` x ``size``, no cropping) the forward pass runs only as far
as the deepest requested layer. Each channel's activation is reduced to one value per image (its
maximum over positions, or the mean) and the position of its maximum is kept, so the patch that
excited it can be cut out later. Memory stays flat in the number of images: per-unit top-k and
bottom-k are merged batch by batch, mean/std are running, and the per-image vectors go to a
memory-mapped ``.npy`` file.

The run folder holds (see :mod:`synthviz.dataset.run` to read it back)::

    manifest.json          settings, layers (channels, grid, receptive field), counts
    images.csv             index,path,label: row i of every array is image i
    features/<layer>.npy   (N, C) float32: the reduced activation of every unit for every image (NaN: skipped)
    state.npz              top/bottom-k values, image indices, positions; running mean and m2
    topk.csv, bottomk.csv  layer,unit,rank,path,value,x,y (rank 1 = highest / lowest)
    units.csv              layer,unit,mean,std,min,max
    skipped.txt            path<TAB>reason of every image that could not be read

An interrupted pass (Ctrl-C, a kill) resumes from its last checkpoint with the same command and
ends with byte-identical files: batches are fixed slices of the image list.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import SynthvizError
from ..io import atomic_write
from ..layers import Tap, default_layer
from ..models import DEFAULT_MODEL, Model
from ..techniques.common import get_model
from .outputs import write_outputs
from .receptive import receptive_field
from .sources import Source, batch_loader, find_images
from .stats import REDUCTIONS, UnitStats, reduce_positions

FORMAT = 1


def index_tap(model: Model, names: Sequence[str]) -> Tap:
    """The :class:`Tap` of an indexing pass: raw outputs, so a token layer keeps its class token(s)
    as positions (B, N, C); use inside ``with``."""
    return Tap(model, names, spatial=False)


def forward_batch(model: Model, tap: Tap, images: torch.Tensor, reduce: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (values (B, C), positions (B, C))} for a batch (B, 3, H, W) in [0, 1], truncated
    forward through an :func:`index_tap`. Positions: ``y * W + x`` for maps, the token index
    (class tokens first) for token layers."""
    with torch.inference_mode():
        acts = tap(images.to(model.device, non_blocking=True))
        out = {}
        for name, a in acts.items():
            if a.dim() == 4 and model.channels_last is not None and model.channels_last(name):
                a = a.permute(0, 3, 1, 2)  # Swin's (B, H, W, C)
            out[name] = tuple(t.cpu() for t in reduce_positions(a, reduce))
        return out


def _settings(model: Model, weights, layers, size, reduce, top_k, batch_size) -> dict:
    return {"format": FORMAT, "model": model.name, "weights": str(weights), "layers": list(layers), "size": size,
            "reduce": reduce, "top_k": top_k, "batch_size": batch_size}


class Pass:
    """The state of one indexing pass: per-layer :class:`UnitStats`, the feature memmaps, the
    skipped images and how many batches are done. Checkpoints go to ``out/state.npz`` atomically."""

    def __init__(self, out: Path, source: Source, layers: dict[str, dict], top_k: int, batch_size: int, fresh: bool):
        self.out, self.source, self.layers, self.batch_size = out, source, layers, batch_size
        self.consistent = True
        self.features = {}
        (out / "features").mkdir(parents=True, exist_ok=True)
        for name, info in layers.items():
            path = out / "features" / f"{name}.npy"
            shape = (len(source), info["channels"])
            if fresh or not path.exists():
                self.features[name] = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
            else:
                self.features[name] = np.load(path, mmap_mode="r+")
        self.stats = {name: UnitStats(info["channels"], top_k) for name, info in layers.items()}
        self.skipped: list[tuple[int, str]] = []
        self.batches_done = 0
        if not fresh and (out / "state.npz").exists():
            with np.load(out / "state.npz") as state:
                self.stats = {name: UnitStats.from_state(state, f"{name}::") for name in layers}
                self.batches_done = int(state["batches_done"])
                self.skipped = [tuple(s) for s in json.loads(str(state["skipped"]))]

    def empty(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """No results (a batch whose every image failed)."""
        return {n: (torch.empty(0, i["channels"]), torch.empty(0, i["channels"], dtype=torch.long))
                for n, i in self.layers.items()}

    def add(self, first: int, kept: Sequence[int], failed: Sequence[tuple[int, str]],
            results: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Merge one batch (its images' indices ``kept``; ``failed`` as (index, reason))."""
        self.consistent = False
        idx = torch.tensor(list(kept), dtype=torch.long)
        for name, (values, positions) in results.items():
            self.stats[name].update(values, positions, idx)
            feats = self.features[name]
            if len(kept):
                feats[np.asarray(kept)] = values.numpy()
            for i, _ in failed:
                feats[i] = np.nan
        self.skipped += [(int(i), str(r)) for i, r in failed]
        self.batches_done += 1
        self.consistent = True

    def checkpoint(self) -> None:
        if not self.consistent:  # interrupted inside add(): the previous checkpoint stands
            return
        for feats in self.features.values():
            feats.flush()
        state = {"batches_done": np.array(self.batches_done), "skipped": np.array(json.dumps(self.skipped))}
        for name, stats in self.stats.items():
            state.update(stats.state(f"{name}::"))
        atomic_write(self.out / "state.npz", npz_bytes(state))


def _batches_done(path: Path) -> int:
    with np.load(path) as state:
        return int(state["batches_done"])


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (readable by ``np.load``) whose bytes depend only on the arrays: ``np.savez``
    stamps the current time into the zip, which would make a resumed run's files differ."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for key, value in arrays.items():
            item = io.BytesIO()
            np.lib.format.write_array(item, np.asanyarray(value), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), item.getvalue())
    return buf.getvalue()


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


def _prepare(out: Path, settings: dict, source: Source, overwrite: bool) -> bool:
    """Start a fresh run folder or check that an existing one was made with the same settings
    and images. Returns True for a fresh start."""
    manifest = out / "manifest.json"
    if manifest.exists() and not overwrite:
        old = json.loads(manifest.read_text())
        if old.get("settings") != settings:
            diff = [k for k in settings if old.get("settings", {}).get(k) != settings[k]]
            raise SynthvizError(f"{out} holds an index made with other settings ({', '.join(diff)}); "
                                "choose another --out or pass --overwrite")
        listed = (out / "images.csv").read_text() if (out / "images.csv").exists() else ""
        if listed != _images_csv(source):
            raise SynthvizError(f"{out} holds an index of other images; choose another --out or pass --overwrite")
        return False
    if out.exists() and any(out.iterdir()) and not manifest.exists() and not overwrite:
        raise SynthvizError(f"{out} exists and is not an index; choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    (out / "state.npz").unlink(missing_ok=True)
    return True


def _images_csv(source: Source) -> str:
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "path", "label"])
    writer.writerows([i, p, lab] for i, (p, lab) in enumerate(zip(source.paths, source.labels)))
    return buf.getvalue()


def default_workers() -> int:
    """DataLoader workers sized to the machine: one core is left to the forward pass."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def index(dataset: str | os.PathLike, out: str | os.PathLike = "run", *,
          model: str | Model | torch.nn.Module = DEFAULT_MODEL, weights: str = "default",
          layers: str | Sequence[str] | None = None, size: int = 224, reduce: str = "max", top_k: int = 16,
          batch_size: int = 32, workers: int | None = None, device: str | None = None,
          ray: str | None = None, overwrite: bool = False, progress: bool = True,
          checkpoint_every: float = 30.0, on_batch: Callable[[int], None] | None = None) -> Path:
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

    Returns the run folder. Re-running the same call resumes; a finished run is left as it is.
    """
    if reduce not in REDUCTIONS:
        raise SynthvizError(f"unknown reduction '{reduce}'; use max or mean")
    if top_k < 1 or batch_size < 1 or size < 8:
        raise SynthvizError("--top-k and --batch-size must be positive and --size at least 8")
    m = get_model(model, weights, device)
    m.check_size(size)
    names = [n.strip() for n in layers.split(",")] if isinstance(layers, str) else list(layers or [])
    names = [n for n in names if n] or [default_layer(m, "mid")]
    out = Path(out)
    source = find_images(dataset)
    settings = _settings(m, weights, names, size, reduce, top_k, batch_size)
    fresh = _prepare(out, settings, source, overwrite)
    manifest_path = out / "manifest.json"
    if not fresh and json.loads(manifest_path.read_text()).get("status") == "complete":
        return out
    loader = None
    if ray is None:  # the reading workers start now and read ahead while the layers are measured
        start = 0 if fresh or not (out / "state.npz").exists() else _batches_done(out / "state.npz")
        loader = iter(batch_loader(source.paths, size, batch_size, default_workers() if workers is None else workers,
                                   start_batch=start))
    info = _layer_info(m, names, size)
    if fresh:
        atomic_write(out / "images.csv", _images_csv(source))
    manifest = {"settings": settings, "dataset": source.root, "count": len(source), "layers": info,
                "status": "partial"}
    atomic_write(manifest_path, json.dumps(manifest, indent=2) + "\n")
    state = Pass(out, source, info, top_k, batch_size, fresh)
    if ray is not None:
        from .distributed import run_ray

        run_ray(state, m, names, size, reduce, batch_size, ray, progress, checkpoint_every, on_batch)
    else:
        _run_local(state, m, names, reduce, loader, progress, checkpoint_every, on_batch)
    write_outputs(out, source, state.stats, state.features, info, state.skipped)
    manifest.update(status="complete", skipped=len(state.skipped))
    atomic_write(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return out


def progress_bar(total: int, done: int, label: str):
    """A rich bar on stderr with images/s."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]} img/s"), TimeRemainingColumn(), console=Console(stderr=True))
    task = bar.add_task(label, total=total, completed=done, rate="-")
    return bar, task


def drive(state: Pass, batches, total_images: int, progress: bool, checkpoint_every: float,
          on_batch: Callable[[int], None] | None, step: Callable) -> None:
    """Feed ``batches`` (first, payload...) through ``step`` into ``state`` with a progress bar and
    periodic checkpoints; on Ctrl-C the last complete batch is checkpointed before re-raising."""
    bar, task = progress_bar(total_images, min(total_images, state.batches_done * state.batch_size), "index")
    last, start, seen = time.monotonic(), time.monotonic(), 0
    try:
        with bar if progress else _Null():
            for item in batches:
                first, kept, failed, results = step(item)
                state.add(first, kept, failed, results)
                seen += len(kept) + len(failed)
                bar.update(task, advance=len(kept) + len(failed), rate=f"{seen / max(time.monotonic() - start, 1e-9):.1f}")
                if time.monotonic() - last > checkpoint_every:
                    state.checkpoint()
                    last = time.monotonic()
                if on_batch is not None:
                    on_batch(state.batches_done)
    finally:
        state.checkpoint()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _run_local(state: Pass, model: Model, names, reduce, loader, progress, checkpoint_every, on_batch) -> None:
    """The pass in this process: ``loader`` yields the batches from ``state.batches_done`` on."""
    with model.evaluating(), index_tap(model, names) as tap:

        def step(item):
            first, images, kept, failed = item
            results = forward_batch(model, tap, images, reduce) if len(kept) else state.empty()
            return first, kept, failed, results

        drive(state, loader, len(state.source), progress, checkpoint_every, on_batch, step)
