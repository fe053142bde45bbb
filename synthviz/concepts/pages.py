"""The pages of a concepts run: ``index.html`` (every concept: its render, its top images, the
classes it matters to) and ``pages/concept-<k>.html`` (its render, its importance per class, its
top images each with the concept's heatmap over it). Plain files that work from disk, made with
:mod:`synthviz.html`; pictures are PNGs under ``pages/``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..dataset.sources import read_image
from ..errors import BadImage
from ..html import escape, img, link, page, table
from ..io import atomic_write, make_grid, save_image
from ..overlay import overlay
from .outputs import read_concepts, read_importance
from .pictures import coefficient_maps, open_concepts, run_model, upsample

THUMB = 4  # top images shown per concept on the index
CLASSES = 8  # classes listed per concept


def _heatmaps(run: Path, model, dictionary, size: int, tops: dict[int, list[tuple[str, float]]]) -> dict:
    """Per concept, two pictures under ``pages/``: its top images each with its heatmap over it
    (``concept-<k>-top.png``, a captioned grid) and the first :data:`THUMB` of them for the index
    (``concept-<k>-thumb.png``). Returns {concept: (top file, thumb file)}."""
    paths = sorted({p for items in tops.values() for p, _ in items})
    images, kept = [], []
    for p in paths:
        try:
            images.append(read_image(p, size))
            kept.append(p)
        except BadImage:  # a file changed since the run: its pictures are left out
            continue
    if not images:
        return {}
    where = {p: i for i, p in enumerate(kept)}
    stack = torch.stack(images)
    maps = torch.cat([coefficient_maps(model, dictionary, stack[i:i + 32]) for i in range(0, len(stack), 32)])
    files = {}
    for k, items in tops.items():
        found = [(rank, where[p], v) for rank, (p, v) in enumerate(items, 1) if p in where]
        if not found:
            continue
        idx = torch.tensor([i for _, i, _ in found])
        pictures = overlay(stack[idx], upsample(maps[idx, k:k + 1], (size, size)), display="positive")
        labels = [f"{rank}. {v:.3g}" for rank, _, v in found]
        top, thumb = f"concept-{k:03d}-top.png", f"concept-{k:03d}-thumb.png"
        save_image(make_grid(pictures, labels, ncol=min(8, len(found))), run / "pages" / top, overwrite=True)
        save_image(make_grid(pictures[:THUMB], ncol=THUMB), run / "pages" / thumb, overwrite=True)
        files[k] = (top, thumb)
    return files


def _classes(importance: dict[str, list[float]], k: int) -> list[tuple[str, float]]:
    """The classes concept ``k`` matters most to (largest importance first)."""
    ranked = sorted(((c, v[k]) for c, v in importance.items() if k < len(v)), key=lambda cv: -cv[1])
    return ranked[:CLASSES]


def _concept_page(run: Path, k: int, items, files, importance, metrics) -> str:
    render = run / "renders" / f"concept-{k:03d}.png"
    picture = img(f"../renders/{render.name}", f"concept {k} rendered", 192) if render.exists() else \
        "<p>Not rendered yet: <code>synthviz concepts-render RUN --concepts " + str(k) + "</code></p>"
    rows = [(c, f"{v:.4g}") for c, v in _classes(importance, k)]
    grid = img(files[k][0], f"top images of concept {k}") if k in files else "<p>no image</p>"
    names = "".join(f"<li>{escape(os.path.basename(p))} ({v:.3g})</li>" for p, v in items)
    return page(f"concept {k}", [f"<h1>Concept {k}</h1>", link("../index.html", "all concepts"),
                                 f"<h2>Rendered</h2>{picture}",
                                 "<h2>Importance per class</h2><p>"
                                 + escape(str(metrics.get("importance", "gradient x coefficient")))
                                 + ", mean over the images predicted as the class</p>"
                                 + table(["class", "importance"], rows),
                                 f"<h2>Top images</h2><p>the concept's coefficient over each image (largest value)</p>"
                                 f"{grid}<ol>{names}</ol>", f"<p>{escape(json.dumps(metrics))}</p>"])


def write_pages(run: str | os.PathLike, *, model=None) -> Path:
    """Write ``run/index.html`` and a page per concept; returns the index page's path."""
    run = Path(run)
    dictionary, settings = open_concepts(run)
    m = run_model(dictionary, model, settings.get("weights", "default"))
    tops = read_concepts(run)
    importance = read_importance(run)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8")) if (run / "metrics.json").exists() else {}
    files = _heatmaps(run, m, dictionary, settings["size"], tops)
    rows = []
    for k in range(dictionary.concepts):
        items = tops.get(k, [])
        atomic_write(run / "pages" / f"concept-{k:03d}.html", _concept_page(run, k, items, files, importance, metrics))
        render = run / "renders" / f"concept-{k:03d}.png"
        thumbs = img(f"pages/{files[k][1]}", f"top images of concept {k}") if k in files else ""
        top_classes = ", ".join(f"{escape(c)} ({v:.3g})" for c, v in _classes(importance, k)[:3])
        picture = img(f"renders/{render.name}", f"concept {k}", 72) if render.exists() else ""
        rows.append(f"<tr><td>{link(f'pages/concept-{k:03d}.html', f'concept {k}')}</td><td>{picture}</td>"
                    f"<td>{thumbs}</td><td>{top_classes}</td></tr>")
    summary = (f"<p>{escape(dictionary.method)} dictionary of {escape(dictionary.layer)} in {escape(dictionary.model)}: "
               f"{dictionary.concepts} concepts; R² {metrics.get('r2', float('nan')):.3f}, "
               f"dead {metrics.get('dead_fraction', float('nan')):.2f}, L0 {metrics.get('l0', float('nan')):.2f}</p>")
    body = ["<h1>Concepts</h1>", summary,
            "<table><tr><th>concept</th><th>rendered</th><th>top images</th><th>classes it matters to</th></tr>"
            + "".join(rows) + "</table>"]
    atomic_write(run / "index.html", page("concepts", body))
    return run / "index.html"
