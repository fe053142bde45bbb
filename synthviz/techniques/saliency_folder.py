"""Saliency for a folder of photos (``synthviz saliency FOLDER/``): one comparison figure per photo,
every method's maps in one ``maps.npz`` (key ``PHOTO/METHOD``, (1, C, H, W) float32) and a
``targets.csv`` of each photo's explained class, its logit and probability. Photos of the same
shape are explained in batches (every method is batched)."""

from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np
import torch

from ..attribution import check_options, method_names, resolve_targets
from ..cost import check_size
from ..io import csv_text, list_images, read_all, skipped_note, write_file
from ..models import load_model
from .saliency_figure import comparison, explain


def photos_in(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name (an error when there are none)."""
    return list_images(folder)


def explain_folder(folder: Path, methods="all", target=None, *, model="efficientnet_lite0", weights: str = "default",
                   size: int = 224, device: str | None = None, out: Path = Path("saliency"), overwrite: bool = False,
                   options: dict | None = None, batch: int = 8, say=print) -> list[Path]:
    """Explain every photo of ``folder``; writes into the folder ``out``; returns the paths written."""
    from ..io import free_path, save_image

    names = method_names(methods)
    opts = check_options(options or {})
    m = load_model(model, weights, device)
    files = photos_in(folder)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    loaded, skipped = read_all(files, size, where=str(folder))
    if skipped:
        say(skipped_note(skipped))
    arrays, rows, written = {}, [], []
    groups: dict[tuple, list] = {}
    for f, img in loaded:
        groups.setdefault(tuple(img.shape), []).append((f, img))
    for group in groups.values():
        for start in range(0, len(group), batch):
            chunk = group[start:start + batch]
            x = torch.cat([img for _, img in chunk]).to(m.device)
            check_size(m, min(x.shape[-2:]))
            targets = resolve_targets(m, x, target)
            with torch.no_grad():
                logits = m(x)
            attributions, _, _ = explain(m, x, names, targets, opts)
            for i, (f, img) in enumerate(chunk):
                cls = targets.class_ids()[i].item()
                prob = float(logits[i].softmax(0)[cls])
                one = {n: _row(a, i) for n, a in attributions.items()}
                caption = f"{cls} {m.class_name(cls)}"[:28] + f" p={prob:.2f}"
                grid, _ = comparison(img.cpu(), one, caption)
                path = save_image(grid, out / f"{f.stem}.png", overwrite)
                written.append(path)
                say(f"saved {path}")
                arrays.update({f"{f.stem}/{n}": a.maps.cpu().float().numpy() for n, a in one.items()})
                rows.append([f.name, cls, m.class_name(cls), f"{float(logits[i, cls]):.6g}", f"{prob:.6g}"])
    buffer = _io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    written.append(write_file(free_path(out / "maps.npz", overwrite), buffer.getvalue(), overwrite=True))
    text = csv_text(["image", "target", "label", "logit", "probability"], sorted(rows))
    written.append(write_file(free_path(out / "targets.csv", overwrite), text, overwrite=True))
    for path in written[-2:]:
        say(f"saved {path}")
    return written


def _row(att, i: int):
    """The i-th image of a batched Attribution, as an Attribution of one."""
    from dataclasses import replace

    return replace(att, maps=att.maps[i:i + 1], raw=att.raw[i:i + 1], targets=att.targets[i:i + 1])
