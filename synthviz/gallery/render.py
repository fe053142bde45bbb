"""Rendering one gallery item into plain data (PNG bytes, captions), in any process."""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from pathlib import Path

import torch

from ..errors import SynthvizError
from ..io import encode_image
from ..presets import resolve_params, technique_parameters
from ..models import DEFAULT_MODEL
from ..result import Result, plain
from ..techniques import TECHNIQUES
from .spec import THUMB_SIDE

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
    from ..version import __version__

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
            result = fn(**kwargs)
        _judge(result, kwargs)
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
    from ..models import load_model

    key = (name, str(weights), str(device))
    if key not in _MODELS:
        if len(_MODELS) >= 2:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = load_model(name, weights=weights, device=device)
    return _MODELS[key]


def _number(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _judge(result: Result, kwargs: dict) -> None:
    """Class visualizations and style transfers get measured by an independent network
    (EfficientNet-Lite2) when its weights are installed (the demo extra): the caption then shows
    both probabilities, or the style judge's content kept, style gap and checkerboard."""
    is_class = "cls" in result.info and "probability" in result.info
    is_style = result.technique == "style" and kwargs.get("content") is not None and kwargs.get("styles") is not None
    try:
        from ..judge import judge_result, style_scores

        if is_class:
            judge_result(result)
        elif is_style:
            from ..io import as_image

            styles = kwargs["styles"] if isinstance(kwargs["styles"], (list, tuple)) else [kwargs["styles"]]
            scores = style_scores(result.images, as_image(kwargs["content"]), as_image(styles[0]))
            result.info["judge"] = {k: scores[k] for k in ("judge", "content", "style_gap", "checkerboard")}
    except (ImportError, SynthvizError):  # no judge installed: captions carry the model's own figure
        pass


def _measured(info: dict, i: int) -> str:
    """``p 0.98 here, 0.71 under efficientnet_lite2`` for image ``i`` of a class visualization."""
    probs, judged = info.get("probability"), info.get("judge") or {}
    if isinstance(judged, dict) and "style_gap" in judged:
        return (f"on {judged['judge']}: content kept {judged['content']:.2f}, style gap {judged['style_gap']:.2f}, "
                f"checkerboard {judged['checkerboard']:.2f}× the photo's")
    if not isinstance(probs, list) or i >= len(probs) or probs[i] is None:
        return ""
    text = f"p {probs[i]:.2f} on {info.get('model', 'the model')}"
    other = judged.get("probability") if isinstance(judged, dict) else None
    if isinstance(other, list) and i < len(other) and other[i] is not None:
        text += f", {other[i]:.2f} on {judged.get('model')} (top-5 in {judged['top5'][i]:.0%} of views)"
    return text


def _describe(item: dict, result: Result) -> dict:
    """Captions of the tiles an item shows: one per image when the result is a batch with no
    figure of its own (channels of a layer, several renders of a class), else its one picture."""
    values = [_number(v) for v in result.values.tolist()] if result.values.numel() else []
    n = len(result.images)
    per_image = n > 1 and result.figure is None
    labels = result.labels if len(result.labels) == n else []
    tiles = []
    for i in range(n if per_image else 1):
        named = list(dict.fromkeys(result.labels))
        whole = "; ".join(named) if 0 < len(named) <= 4 else f"{item['technique']}: {n} images" if named else item["technique"]
        unit = labels[i] if per_image and labels else whole
        value = values[i] if per_image and i < len(values) else (
            sum(values) / len(values) if values and None not in values else None)
        tiles.append({"unit": unit, "value": value})
    info = plain(result.info)
    for i, tile in enumerate(tiles):
        tile["measured"] = _measured(info, i)
    return {"model": str(info.get("model") or item["params"].get("model") or DEFAULT_MODEL),
            "recipe": str(info.get("recipe") or item["preset"]), "objective": str(result.objective),
            "steps": int(result.steps), "stopped": result.stopped, "tiles": tiles, "info": info}


def _encode(item: dict, result, entry: dict) -> dict[str, bytes]:
    """PNG bytes of every tile (and the item's full picture, a thumbnail when large, the video)."""
    from ..io import make_grid, resize, save_video

    files: dict[str, bytes] = {}
    iid = item["id"]
    tiles = entry["tiles"]
    full = result.picture()
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
