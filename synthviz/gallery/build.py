"""Galleries: a spec (which presets, over which models, classes, layers, channels, images) expanded
into independent items, rendered sequentially, in worker processes or as Ray tasks, recorded in a
resumable manifest and shown on one self-contained ``index.html``.

A spec is TOML::

    title = "My gallery"
    video = "gif"                 # optional: also save each optimization as a GIF (or "mp4")
    [set]                         # applied to every item whose technique takes the key
    size = 128

    [[section]]
    title = "Classes"
    preset = "classviz-lucid"     # a preset name or a .toml path
    set = { steps = 256 }         # fixed keys for this section
    over = { target = ["Egyptian cat", "goldfish"], model = ["efficientnet_lite0"] }  # one item per combination
    # split_units = 16            # probe: one item per 16 channels ("units = 'all'" = every channel)
    # optional = true             # skip (instead of failing) when the technique is not installed

Layout of ``OUT``: ``index.html``, ``manifest.json`` (every finished or failed item, written
atomically), ``items/`` (full-size PNGs, GIF/MP4), ``thumbs/`` (thumbnails of large images).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadValue, SynthvizError
from ..cluster import import_ray
from ..io import deferred_interrupt, write_file
from .executors import _run_processes, _run_ray
from .manifest import Manifest
from .page import write_index
from .render import render_item
from .spec import Spec, load_spec


@dataclass
class GalleryRun:
    """What :func:`build_gallery` did: ids rendered now, skipped (already done), failed now."""

    out: Path
    index: Path
    rendered: list[str]
    skipped: list[str]
    failed: list[str]
    manifest: Manifest


def build_gallery(spec: str | os.PathLike | dict | Spec | None = None, out: str | os.PathLike = "synthviz-gallery", *,
                  overrides: dict | None = None, workers: int = 1, ray: str | None = None,
                  cpus_per_item: int = 1, threads: int | None = None,
                  on_item: Callable[[dict], None] | None = None) -> GalleryRun:
    """Render a gallery into ``out`` and write ``out/index.html``; re-running resumes.

    Args:
        spec: a spec path, a shipped spec name (``None`` = the default showcase on the embedded
            model), a parsed dict, or a :class:`Spec`.
        overrides: keys applied to every item whose technique takes them (``{"size": 64}``).
        workers: parallel worker processes on this machine (one per GPU when GPUs are present).
        ray: a Ray cluster address (``auto``, ``ray://host:10001``, or ``local`` to start one here);
            each item becomes a Ray task needing one GPU (when the cluster has GPUs) or
            ``cpus_per_item`` CPUs. An already initialised Ray session is used as is.
        threads: CPU threads per item (default: this process's setting when sequential, the
            cores divided among the workers, ``cpus_per_item`` on Ray). Renders are deterministic
            for a given seed and thread count, so equal ``threads`` give equal galleries.
        on_item: called with each manifest entry as it is recorded (progress display).
    """
    spec = spec if isinstance(spec, Spec) else load_spec(spec, overrides)
    out = Path(out)
    check_parallel(workers, cpus_per_item, threads)  # before any folder is made
    if out.exists() and not out.is_dir():
        raise SynthvizError(f"--out {out} is a file; give a folder for the gallery")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise SynthvizError(f"cannot create folder {out}; choose a writable --out") from None
    if not os.access(out, os.W_OK):
        raise SynthvizError(f"cannot write to {out}; choose a writable --out")
    if ray:
        import_ray()  # before any work: a missing extra is a one-line error, not a failed gallery
    manifest = Manifest(out)
    manifest.title = spec.title
    skipped = [it.id for it in spec.items if manifest.done(it, out)]
    todo = [it for it in spec.items if it.id not in set(skipped)]
    rendered, failed = [], []
    last_page = time.monotonic()
    results = (_run_ray(todo, ray, cpus_per_item, threads) if ray else
               _run_processes(todo, workers, threads) if workers > 1 and len(todo) > 1 else
               (render_item(it.as_dict(), threads=threads) for it in todo))
    try:
        for entry in results:
            files = entry.pop("files", {})
            for rel, data in files.items():
                write_file(out / rel, data, overwrite=True)
            entry["paths"] = sorted(files)
            manifest.record(entry)
            (rendered if entry["status"] == "done" else failed).append(entry["id"])
            if on_item:
                on_item(entry)
            if time.monotonic() - last_page > 30:  # a page to watch while a long gallery renders
                write_index(spec, manifest, out)
                last_page = time.monotonic()
    finally:  # also on Ctrl-C or an error: everything finished so far is saved and shown
        with deferred_interrupt():  # a second Ctrl-C waits until the page is written
            close = getattr(results, "close", None)
            if close:
                close()
            manifest.save()
            index = write_index(spec, manifest, out)
    return GalleryRun(out, index, rendered, skipped, failed, manifest)


def check_parallel(workers: int = 1, cpus_per_item: int = 1, threads: int | None = None) -> None:
    """The parallelism options, checked before anything is made (the CLI calls this first too)."""
    if workers < 1 or cpus_per_item < 1 or (threads is not None and threads < 1):
        raise BadValue("--workers, --cpus-per-item and --threads must be at least 1")


def summarize(run: GalleryRun) -> str:
    return (f"{len(run.rendered)} rendered, {len(run.skipped)} already done, {len(run.failed)} failed; "
            f"open {run.index}")
