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

import hashlib
import itertools
import json
import math
import os
import re
import tempfile
import time
import tomllib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import SynthvizError, did_you_mean
from .io import atomic_write, encode_image
from .presets import (Preset, as_result, check_complete, load_preset, main_image, preset_dirs, resolve_params,
                      technique_parameters, validate)
from .gallery_page import write_index
from .techniques import TECHNIQUES

SPEC_KEYS = ("title", "description", "video", "set", "section")
SECTION_KEYS = ("title", "description", "preset", "set", "over", "split_units", "optional")
THUMB_SIDE = 256  # taller images get a thumbnail of this height; smaller ones are their own thumbnail
DEFAULT_SPEC = "showcase"


# ------------------------------------------------------------------------------------------- spec

@dataclass
class Item:
    """One independent render: ``technique(**params)``; plain data, so it pickles to processes and Ray."""

    id: str
    section: int
    preset: str
    technique: str
    params: dict
    base: str | None = None  # folder of a user's preset file, for relative image paths
    video: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Section:
    title: str
    description: str
    preset: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Spec:
    title: str
    description: str
    sections: list[Section]
    path: Path | None = None

    @property
    def items(self) -> list[Item]:
        return [it for s in self.sections for it in s.items]


def spec_dirs() -> list[Path]:
    return [d / "galleries" for d in preset_dirs() if (d / "galleries").is_dir()]


def find_spec(spec: str | os.PathLike | None) -> Path:
    """A spec file by path, or a shipped spec by name (``showcase``, the default)."""
    text = str(spec if spec is not None else DEFAULT_SPEC)
    path = Path(text)
    if path.is_file():
        return path
    if text.endswith(".toml"):
        raise SynthvizError(f"gallery spec not found: {path}; check the path")
    shipped = {p.stem: p for d in spec_dirs() for p in d.glob("*.toml")}
    if text not in shipped:
        raise SynthvizError(f"unknown gallery spec '{text}'{did_you_mean(text, shipped)}; pass a .toml file "
                            f"(shipped: {', '.join(sorted(shipped)) or 'none'})")
    return shipped[text]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "section"


def _item_id(section: str, preset: str, technique: str, params: dict, video: str | None) -> str:
    key = json.dumps([preset, technique, params, video], sort_keys=True, default=str)
    return f"{_slug(section)}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def load_spec(spec: str | os.PathLike | dict | None = None, overrides: dict | None = None) -> Spec:
    """Read and expand a spec (a path, a shipped name, or an already parsed dict) into items.

    ``overrides`` are applied to every item whose technique takes the key (after the spec's own
    keys), e.g. ``{"size": 64, "steps": 4}`` for a quick test build. Every item is validated here,
    before anything renders.
    """
    path = None
    if isinstance(spec, dict):
        data = spec
    else:
        path = find_spec(spec)
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise SynthvizError(f"gallery spec {path} is not valid TOML ({e}); fix the file") from None
    name = str(path or "gallery spec")
    for key in data:
        if key not in SPEC_KEYS:
            raise SynthvizError(f"{name}: unknown key '{key}'{did_you_mean(key, SPEC_KEYS)}; use {', '.join(SPEC_KEYS)}")
    video = data.get("video") or None
    if video is not None and video not in ("gif", "mp4"):
        raise SynthvizError(f"{name}: video must be \"gif\" or \"mp4\", not {video!r}")
    common = data.get("set", {})
    sections = []
    for si, sec in enumerate(data.get("section", [])):
        for key in sec:
            if key not in SECTION_KEYS:
                raise SynthvizError(f"{name}: section {si + 1} has unknown key '{key}'"
                                    f"{did_you_mean(key, SECTION_KEYS)}; use {', '.join(SECTION_KEYS)}")
        if "preset" not in sec:
            raise SynthvizError(f"{name}: section {si + 1} names no preset; add preset = \"NAME\"")
        preset = load_preset(_relative(sec["preset"], path), validate_params=False)
        if not preset.available:
            if sec.get("optional"):
                continue
            TECHNIQUES.get(preset.technique)  # raises the one-line unknown-technique error
        title = str(sec.get("title", preset.name))
        section = Section(title, str(sec.get("description", preset.description)), preset.name)
        section.items = _expand(section, si, preset, sec, common, overrides or {}, video,
                                f"{name}: section '{title}'")
        sections.append(section)
    known = {k for s in sections for k in technique_parameters(s.items[0].technique)} if any(
        s.items for s in sections) else set()
    for key in [*common, *(overrides or {})]:
        if known and key not in known:  # a key no technique of this gallery takes is a typo, not a no-op
            raise SynthvizError(f"{name}: no technique in this gallery takes '{key}'{did_you_mean(key, known)}")
    return Spec(str(data.get("title", "synthviz gallery")), str(data.get("description", "")), sections, path)


def _relative(value: str, spec_path: Path | None) -> str:
    """A preset path relative to the spec file's folder."""
    if spec_path is not None and value.endswith(".toml") and not Path(value).is_absolute():
        candidate = spec_path.parent / value
        if candidate.is_file():
            return str(candidate)
    return value


def _expand(section: Section, index: int, preset: Preset, sec: dict, common: dict, overrides: dict,
            video: str | None, where: str) -> list[Item]:
    allowed = technique_parameters(preset.technique)
    fixed = {**preset.params, **{k: v for k, v in common.items() if k in allowed}, **sec.get("set", {})}
    last = {k: v for k, v in overrides.items() if k in allowed}  # the caller's overrides win over the spec
    over = sec.get("over", {})
    if not isinstance(over, dict) or not all(isinstance(v, list) and v for v in over.values()):
        raise SynthvizError(f"{where}: over must be a table of non-empty lists, e.g. over = {{ target = [1, 2] }}")
    base = str(preset.path.parent) if preset.path is not None and preset.path.parent not in preset_dirs() else None
    video = video if "frame_every" in allowed else None
    items = []
    for combo in itertools.product(*over.values()):
        params = {**fixed, **dict(zip(over, combo)), **last}
        validate(preset.technique, params, where)
        check_complete(preset.technique, params, where)
        for p in _split_units(params, sec.get("split_units"), where):
            # items whose params match an other section's are still distinct items: the id includes the section
            items.append(Item(_item_id(section.title, preset.name, preset.technique, p, video), index,
                              preset.name, preset.technique, p, base, video))
    return items


def _split_units(params: dict, chunk: int | None, where: str) -> list[dict]:
    """One item per ``chunk`` units of a layer (``units = "all"`` means every channel)."""
    if not chunk:
        return [params]
    if "units" not in params or "layer" not in params:
        raise SynthvizError(f"{where}: split_units needs a preset with layer and units (e.g. channel-grid)")
    from .layers import LOGITS, layer_shape
    from .models import load_model
    from .techniques.probe import parse_units

    # shapes do not depend on weights: random ones avoid a download just to count channels
    model = load_model(params.get("model", "efficientnet_lite0"), weights="random", device="cpu")
    size = int(params.get("size", 128))
    count = model.num_classes if params["layer"] == LOGITS else layer_shape(model, params["layer"], size)[0]
    units = parse_units(params["units"], count)
    return [{**params, "units": units[i : i + chunk]} for i in range(0, len(units), int(chunk))]


# ------------------------------------------------------------------------------------------ render

_WORKER = {"device": None}


def render_item(item: dict, device: str | None = None, threads: int | None = None) -> dict:
    """Render one item and return plain data: ``files`` (relative path -> bytes, PNG/GIF/MP4),
    ``tiles`` (captions) and what the manifest records. Errors are returned, not raised, so one bad
    item never stops a gallery; Ctrl-C is raised. ``threads``: CPU threads for this item (the same
    count gives the same pixels whichever process or machine renders it)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _render_item(item, device)
    finally:
        torch.set_num_threads(before)


def _render_item(item: dict, device: str | None) -> dict:
    from . import __version__

    start = time.time()
    entry = {k: item[k] for k in ("id", "section", "preset", "technique", "params")}
    device = device or _WORKER["device"]
    try:
        fn = TECHNIQUES.get(item["technique"])
        allowed = technique_parameters(item["technique"])
        kwargs = resolve_params(item["params"], Path(item["base"]) if item.get("base") else None)
        if device is not None and "device" in allowed and "device" not in kwargs:
            kwargs["device"] = device
        if isinstance(kwargs.get("model", "efficientnet_lite0"), str) and "model" in allowed:
            kwargs["model"] = _cached_model(kwargs.get("model", allowed["model"][1] or "efficientnet_lite0"),
                                            kwargs.pop("weights", "default"), kwargs.get("device"))
        if "progress" in allowed:
            kwargs["progress"] = False
        if item.get("video"):
            steps = kwargs.get("steps") or technique_parameters(item["technique"]).get("steps", (None, 256))[1] or 256
            kwargs["frame_every"] = max(1, int(steps) // 60)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = as_result(fn(**kwargs))
        entry.update(_describe(item, result))
        entry["notes"] = sorted({str(w.message) for w in caught
                                 if not issubclass(w.category, (DeprecationWarning, FutureWarning))})
        entry["files"] = _encode(item, result, entry)
        entry["status"] = "done"
    except KeyboardInterrupt:
        raise
    except Exception as e:  # recorded per item: the rest of the gallery goes on
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        entry["status"] = "error"
        entry["error"] = message if isinstance(e, SynthvizError) else f"{type(e).__name__}: {message}"
        entry["files"] = {}
    entry["seconds"] = round(time.time() - start, 3)
    entry["synthviz"] = __version__
    return entry


_MODELS: dict = {}


def _cached_model(name: str, weights, device):
    """Models stay loaded between the items of one process (a gallery renders many items per
    model); techniques leave a model exactly as they found it (``frozen``, restored patches)."""
    from .models import load_model

    key = (name, str(weights), str(device))
    if key not in _MODELS:
        if len(_MODELS) >= 2:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = load_model(name, weights=weights, device=device)
    return _MODELS[key]


def _number(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _plain(value):
    """What of ``result.info`` is worth recording: scalars and short lists of scalars."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (list, tuple)) and len(value) <= 64 and all(isinstance(v, (bool, int, float, str)) for v in value):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return _number(value.item())
    return ...  # not recorded


def _describe(item: dict, result) -> dict:
    """Captions of the tiles an item shows: one per batch element (channels of a grid), or the
    technique's single figure."""
    info = result.info
    values = [_number(v) for v in result.values.tolist()] if result.values.numel() else []
    n = len(result.images)
    # a batch of units (channels of a grid, several renders of a class) shows one tile per image; a
    # technique's own figure (inversions beside the original, the fooling panel) shows as one tile
    figure = any(isinstance(info.get(k), torch.Tensor) for k in ("figure", "grid", "panel"))
    per_image = n > 1 and ("units" in info or not figure)
    labels = info.get("labels") if isinstance(info.get("labels"), list) and len(info["labels"]) == n else None
    params = item["params"]
    model = str(info.get("model") or params.get("model") or "efficientnet_lite0")
    recipe = str(info.get("recipe") or item["preset"])
    if "label" in info and "cls" in info:
        unit = f"class {info['cls']} {info['label']}"
    elif "layer" in info:
        unit = str(info["layer"])
    elif isinstance(info.get("layers"), list):
        unit = ", ".join(map(str, info["layers"]))
    elif isinstance(info.get("label"), str):
        unit = info["label"]
    else:
        unit = str(params.get("target", params.get("layer", item["technique"])))
    tiles = []
    for i in range(n if per_image else 1):
        tile_unit = unit
        if per_image:
            tile_unit = f"{unit} ch {labels[i]}" if labels and "layer" in info else f"{unit} #{i}"
        value = values[i] if per_image and i < len(values) else (
            (sum(v for v in values if v is not None) / len(values)) if values and None not in values else None)
        tiles.append({"unit": tile_unit, "value": value})
    recorded = {k: v for k, v in ((k, _plain(v)) for k, v in info.items()) if v is not ...}
    return {"model": model, "recipe": recipe, "objective": str(result.objective), "steps": int(result.steps),
            "stopped": result.stopped, "tiles": tiles, "info": recorded}


def _encode(item: dict, result, entry: dict) -> dict[str, bytes]:
    """PNG bytes of every tile (and the item's full picture, a thumbnail when large, the video)."""
    from .io import make_grid, resize, save_video

    files: dict[str, bytes] = {}
    iid = item["id"]
    tiles = entry["tiles"]
    full = main_image(result)
    files[f"items/{iid}.png"] = encode_image(full)
    entry["full"] = f"items/{iid}.png"
    images = [result.images[i] for i in range(len(tiles))] if len(tiles) > 1 else [full]
    for i, (tile, image) in enumerate(zip(tiles, images)):
        src = entry["full"] if len(tiles) == 1 else f"items/{iid}-{i}.png"
        if len(tiles) > 1:
            files[src] = encode_image(image)
        tile["src"] = src
        tile["size"] = [int(image.shape[-1]), int(image.shape[-2])]
        h, w = image.shape[-2:]
        if h > THUMB_SIDE:  # by height: wide figures (a row of panels) stay sharp at the page's row height
            thumb = resize(image[None], (THUMB_SIDE, max(1, round(w * THUMB_SIDE / h))))[0]
            tile["thumb"] = f"thumbs/{iid}-{i}.png"
            tile["size"] = [int(thumb.shape[-1]), int(thumb.shape[-2])]
            files[tile["thumb"]] = encode_image(thumb)
        else:
            tile["thumb"] = src
    if item.get("video") and result.frames:
        frames = [make_grid(f) if len(f) > 1 else f[0] for f in result.frames]
        with tempfile.TemporaryDirectory() as tmp:
            path = save_video(frames, Path(tmp) / f"{iid}.{item['video']}")
            files[f"items/{iid}.{item['video']}"] = path.read_bytes()
        entry["video"] = f"items/{iid}.{item['video']}"
    return files


# ---------------------------------------------------------------------------------------- manifest

class Manifest:
    """``OUT/manifest.json``: every finished (or failed) item by id.

    Each finished item is appended at once to a journal (``.manifest.journal``, one JSON line,
    fsynced); the manifest itself is rewritten atomically at most every ``save_every`` seconds
    and at the end, then the journal is emptied. Loading merges both (a torn last journal line,
    from a kill mid-append, is ignored), so nothing finished is ever lost and a gallery of tens of
    thousands of items does not rewrite a growing file after every item.
    """

    def __init__(self, out: Path, save_every: float = 2.0):
        self.path = Path(out) / "manifest.json"
        self.journal = Path(out) / ".manifest.journal"
        self.save_every = save_every
        self.items: dict[str, dict] = {}
        self.title = ""
        self._saved = time.monotonic()
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                self.items = dict(data["items"])
                self.title = data.get("title", "")
            except (ValueError, KeyError, TypeError):
                raise SynthvizError(f"manifest {self.path} is unreadable; delete it to render the gallery again "
                                    "from scratch") from None
        if self.journal.exists():
            for line in self.journal.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self.items[entry["id"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill: its files are re-rendered

    def done(self, item: Item, out: Path) -> bool:
        entry = self.items.get(item.id)
        return bool(entry and entry.get("status") == "done" and all((out / f).exists() for f in entry.get("paths", [])))

    def record(self, entry: dict) -> None:
        self.items[entry["id"]] = entry
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with open(self.journal, "a") as f:
            f.write(json.dumps(entry, allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if time.monotonic() - self._saved >= self.save_every:
            self.save()

    def save(self) -> None:
        atomic_write(self.path, json.dumps({"title": self.title, "items": self.items}, indent=1, allow_nan=False))
        self.journal.unlink(missing_ok=True)
        self._saved = time.monotonic()


# ----------------------------------------------------------------------------------------- running

@dataclass
class GalleryRun:
    """What :func:`build_gallery` did: ids rendered now, skipped (already done), failed now."""

    out: Path
    index: Path
    rendered: list[str]
    skipped: list[str]
    failed: list[str]
    manifest: Manifest


def build_gallery(spec: str | os.PathLike | dict | Spec | None = None, out: str | os.PathLike = "gallery", *,
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
    if out.exists() and not out.is_dir():
        raise SynthvizError(f"--out {out} is a file; give a folder for the gallery")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise SynthvizError(f"cannot create folder {out}; choose a writable --out") from None
    if not os.access(out, os.W_OK):
        raise SynthvizError(f"cannot write to {out}; choose a writable --out")
    if workers < 1 or cpus_per_item < 1 or (threads is not None and threads < 1):
        raise SynthvizError("--workers, --cpus-per-item and --threads must be at least 1")
    if ray:
        _import_ray()  # before any work: a missing extra is a one-line error, not a failed gallery
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
                atomic_write(out / rel, data)
            entry["paths"] = sorted(files)
            manifest.record(entry)
            (rendered if entry["status"] == "done" else failed).append(entry["id"])
            if on_item:
                on_item(entry)
            if time.monotonic() - last_page > 30:  # a page to watch while a long gallery renders
                write_index(spec, manifest, out)
                last_page = time.monotonic()
    finally:  # also on Ctrl-C or an error: everything finished so far is saved and shown
        close = getattr(results, "close", None)
        if close:
            close()
        manifest.save()
        index = write_index(spec, manifest, out)
    return GalleryRun(out, index, rendered, skipped, failed, manifest)


def _init_worker(slots, threads: int, gpus: int) -> None:
    slot = slots.get()
    torch.set_num_threads(threads)
    _WORKER["device"] = f"cuda:{slot % gpus}" if gpus else "cpu"


def _run_processes(items: list[Item], workers: int, threads: int | None = None) -> Iterator[dict]:
    """Items in ``workers`` processes (spawned: safe with threads and CUDA), one GPU each when present."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    gpus = torch.cuda.device_count()
    slots = ctx.Queue()
    for i in range(workers):
        slots.put(i)
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(slots, threads, gpus))
    try:
        futures = {pool.submit(render_item, it.as_dict()): it for it in items}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as e:  # a worker that died (out of memory, segfault): record, go on
                yield _failed(futures[future], f"worker process failed ({type(e).__name__}: {e})")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _failed(item: Item, message: str) -> dict:
    return {"id": item.id, "section": item.section, "preset": item.preset, "technique": item.technique,
            "params": item.params, "status": "error", "error": message, "files": {}}


def _ray_task(item: dict, threads: int) -> dict:
    return render_item(item, threads=threads)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SynthvizError('--ray needs Ray, an optional extra: pip install "synthviz[ray]"') from None
    return ray


def _run_ray(items: list[Item], address: str, cpus: int, threads: int | None = None) -> Iterator[dict]:
    """Items as Ray tasks (one GPU each on a GPU cluster, else ``cpus`` CPUs each); results stream
    back as they finish, and the driver writes files and manifest, so workers need no shared disk."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=None if address == "local" else address, log_to_driver=False)
        except Exception as e:
            raise SynthvizError(f"cannot connect to Ray at '{address}' ({str(e).splitlines()[0][:120]}); "
                                "start a cluster with `ray start --head`, or use --ray local") from None
    gpus = ray.cluster_resources().get("GPU", 0)
    task = ray.remote(num_cpus=cpus, num_gpus=1 if gpus else 0, max_retries=1)(_ray_task)
    pending = {task.remote(it.as_dict(), threads or cpus): it for it in items}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(done[0])
            try:
                yield ray.get(done[0])
            except Exception as e:  # the worker died (node lost, out of memory)
                yield _failed(item, f"ray task failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def summarize(run: GalleryRun) -> str:
    return (f"{len(run.rendered)} rendered, {len(run.skipped)} already done, {len(run.failed)} failed; "
            f"open {run.index}")
