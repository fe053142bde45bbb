"""A run folder on disk: starting it or resuming it, the checkpointed state of an indexing pass,
and what a resume finds damaged (a half-written ``manifest.json``, a truncated ``state.npz`` or
feature file), which is reported in one line that offers ``--overwrite`` instead of a traceback.

Every file is written with :func:`~synthviz.io.atomic_write`, so a kill leaves the old file or the
new one; damage means something else touched the folder (a full disk, a copy cut short).
"""

from __future__ import annotations

import abc
import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import BadValue, SynthvizError
from ..io import atomic_write, csv_text, deferred_interrupt
from .sources import Source
from .stats import UnitStats


RESTART = "pass --overwrite to start it again or choose another --out"  # the fix when a pass resumes
REMAKE = "make it again with `synthviz index ... --overwrite`"  # the fix when a finished run is read


def damaged(out: Path, what: str, fix: str = RESTART, kind: str = "index") -> SynthvizError:
    """The one-line error of a run folder (an index, a concepts run: ``kind``) whose ``what`` cannot be used."""
    return SynthvizError(f"the {kind} in {out} is damaged ({what}); {fix}")


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that is an existing file (the index is a folder), before any work."""
    if out.exists() and not out.is_dir():
        raise BadValue(f"--out {out} is a file, but an index is a folder; choose another --out")


def read_manifest(out: Path, fix: str = RESTART, kind: str = "index") -> dict | None:
    """``out/manifest.json`` as a dict (None when there is none); a damaged one is an error
    (``fix``: what the error tells the user to do, by default ``--overwrite``; ``kind``: the run's)."""
    path = out / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise damaged(out, "manifest.json cannot be read", fix, kind) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("settings"), dict):
        raise damaged(out, "manifest.json has no settings", fix, kind)
    return manifest


def progress_kept(out: Path) -> bool:
    """Whether ``out`` holds an unfinished pass that the same command resumes."""
    try:
        manifest = read_manifest(Path(out))
    except SynthvizError:
        return False
    return manifest is not None and manifest.get("status") == "partial"


def images_csv(source: Source) -> str:
    """``images.csv``: index,path,label; row i of every array of the run is image i."""
    return csv_text(["index", "path", "label"],
                    ([i, p, lab] for i, (p, lab) in enumerate(zip(source.paths, source.labels))))


def _same_images(out: Path, source: Source) -> bool:
    """Whether the run lists the images of ``source``. Runs made before paths were stored
    absolute hold them as given, relative to the folder the command ran in (this one)."""
    try:
        with open(out / "images.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        listed = [(os.path.abspath(r["path"]), r["label"]) for r in rows]
    except (OSError, UnicodeDecodeError, KeyError, csv.Error):
        raise damaged(out, "images.csv is missing or cannot be read") from None
    return listed == list(zip(source.paths, source.labels))


def prepare(out: Path, settings: dict, source: Source, overwrite: bool) -> bool:
    """Start a fresh run folder or check that an existing one was made with the same settings
    and images. Returns True for a fresh start, whose ``images.csv`` and unfinished manifest
    are written together (Ctrl-C waits), so the folder is at once one the same command resumes."""
    check_out(out)
    old = None if overwrite else read_manifest(out)
    if old is not None:
        if old["settings"] != settings:
            diff = [k for k in settings if old["settings"].get(k) != settings[k]]
            raise SynthvizError(f"{out} holds an index made with other settings ({', '.join(diff)}); "
                                "choose another --out or pass --overwrite")
        if not _same_images(out, source):
            raise SynthvizError(f"{out} holds an index of other images; choose another --out or pass --overwrite")
        return False
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").exists() and not overwrite:
        raise SynthvizError(f"{out} exists and is not an index; choose another --out or pass --overwrite")
    with deferred_interrupt():
        out.mkdir(parents=True, exist_ok=True)
        (out / "state.npz").unlink(missing_ok=True)
        atomic_write(out / "images.csv", images_csv(source))
        started = {"settings": settings, "dataset": source.root, "count": len(source), "status": "partial"}
        atomic_write(out / "manifest.json", json.dumps(started, indent=2) + "\n")
    return True


def load_state(out: Path, layers: dict[str, dict], fix: str = RESTART) -> dict[str, np.ndarray] | None:
    """The arrays of ``out/state.npz`` (None when there is none), every one read in full and
    checked against ``layers`` (the manifest's entries), so a truncated file is found here."""
    path = out / "state.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}
        int(state["batches_done"])
        json.loads(str(state["skipped"]))
        for name, info in layers.items():
            top_v = state[f"{name}::top_v"]
            if top_v.shape[0] != info["channels"] or any(f"{name}::{k}" not in state for k in UnitStats.KEYS):
                raise ValueError(name)
    except Exception:  # noqa: BLE001 - a zip cut short, a missing array: all mean the same here
        raise damaged(out, "state.npz cannot be read", fix) from None
    return state


def open_array(out: Path, relative: str, shape: tuple, new: bool, dtype=np.float32, fill: float | None = None,
               kind: str = "index") -> np.memmap:
    """The memmap ``out/<relative>`` (a .npy of ``shape`` and ``dtype``): created for a fresh start
    (``new``, every entry ``fill`` if given), else the existing one, checked to be whole (a damaged
    one: one line offering a restart, naming the run folder as a ``kind``)."""
    path = out / relative
    if new:
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
        if fill is not None:
            arr[:] = fill
        return arr
    if not path.exists():
        raise damaged(out, f"{relative} is missing", kind=kind)
    try:  # read-only first: mapped for writing, a file cut short would be silently zero-filled
        whole = np.load(path, mmap_mode="r")
        found = whole.shape, whole.dtype
        del whole
    except Exception:  # noqa: BLE001 - a truncated .npy fails to map
        raise damaged(out, f"{relative} cannot be read", kind=kind) from None
    if found != (tuple(shape), np.dtype(dtype)):
        raise damaged(out, f"{relative} holds {found[0]}, not {tuple(shape)}", kind=kind)
    return np.load(path, mmap_mode="r+")


def open_features(out: Path, name: str, shape: tuple[int, int], new: bool) -> np.memmap:
    """The (N, C) float32 memmap ``out/features/<name>.npy`` (:func:`open_array`)."""
    return open_array(out, f"features/{name}.npy", shape, new)


class Checkpointed(abc.ABC):
    """A resumable pass over a source's fixed batches, as :func:`~synthviz.dataset.index.drive` drives
    it: how many batches are done, the images skipped, and whether the state is whole. A subclass
    keeps each batch's results (:meth:`merge`) and writes them to its run folder (:meth:`save`)."""

    def __init__(self, out: Path, source: Source, batch_size: int):
        self.out, self.source, self.batch_size = out, source, batch_size
        self.batches_done, self.skipped, self.consistent = 0, [], True

    @abc.abstractmethod
    def merge(self, kept: Sequence[int], failed: Sequence[tuple[int, str]], results, *extra) -> None:
        """Keep one batch's ``results`` for the images ``kept`` (``failed``: the ones that could not be read)."""

    @abc.abstractmethod
    def save(self) -> None:
        """Write the state to the run folder, whole or not at all (a kill leaves the previous one)."""

    def add(self, first: int, kept: Sequence[int], failed: Sequence[tuple[int, str]], results, *extra) -> None:
        """Merge one batch: its images' indices ``kept``, ``failed`` as (index, reason), and what
        :meth:`merge` takes of ``results`` (and ``extra``)."""
        self.consistent = False
        self.merge(kept, failed, results, *extra)
        self.skipped += [(int(i), str(r)) for i, r in failed]
        self.batches_done += 1
        self.consistent = True

    def checkpoint(self) -> None:
        """Write the state, unless interrupted inside :meth:`add`: then the previous checkpoint stands."""
        if self.consistent:
            self.save()


class Pass(Checkpointed):
    """The state of one indexing pass: per-layer :class:`UnitStats`, the feature memmaps, the
    skipped images and how many batches are done. Checkpoints go to ``out/state.npz`` atomically."""

    def __init__(self, out: Path, source: Source, layers: dict[str, dict], top_k: int, batch_size: int, fresh: bool,
                 samples=None):
        super().__init__(out, source, batch_size)
        self.layers = layers
        state = None if fresh else load_state(out, layers)
        (out / "features").mkdir(parents=True, exist_ok=True)
        self.features = {name: open_features(out, name, (len(source), info["channels"]), state is None)
                         for name, info in layers.items()}
        # the activation samples (``--samples-per-image``): ``samples(new)`` opens their files (.samples)
        self.samples = samples(state is None) if samples is not None else None
        self.stats = {name: UnitStats(info["channels"], top_k) for name, info in layers.items()}
        if state is not None:
            self.stats = {name: UnitStats.from_state(state, f"{name}::") for name in layers}
            self.batches_done = int(state["batches_done"])
            self.skipped = [tuple(s) for s in json.loads(str(state["skipped"]))]

    def empty(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """No results (a batch whose every image failed)."""
        return {n: (torch.empty(0, i["channels"]), torch.empty(0, i["channels"], dtype=torch.long))
                for n, i in self.layers.items()}

    def merge(self, kept: Sequence[int], failed: Sequence[tuple[int, str]],
              results: dict[str, tuple[torch.Tensor, torch.Tensor]], samples: dict | None = None) -> None:
        """Each layer's (values, positions) into its statistics and features (``samples``: the batch's
        activation samples, see :func:`synthviz.dataset.samples.sample_batch`)."""
        if self.samples is not None:
            self.samples.store(kept, failed, samples)
        idx = torch.tensor(list(kept), dtype=torch.long)
        for name, (values, positions) in results.items():
            self.stats[name].update(values, positions, idx)
            feats = self.features[name]
            if len(kept):
                feats[np.asarray(kept)] = values.numpy()
            for i, _ in failed:
                feats[i] = np.nan

    def save(self) -> None:
        for feats in self.features.values():
            feats.flush()
        if self.samples is not None:
            self.samples.flush()
        state = {"batches_done": np.array(self.batches_done), "skipped": np.array(json.dumps(self.skipped))}
        for name, stats in self.stats.items():
            state.update(stats.state(f"{name}::"))
        atomic_write(self.out / "state.npz", npz_bytes(state))

    def forget(self) -> None:
        """Drop the checkpoint, so the next run of the same command reads every image again."""
        (self.out / "state.npz").unlink(missing_ok=True)


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
