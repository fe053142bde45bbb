"""Writing an activation atlas folder (see :mod:`synthviz.dataset.atlas` for the method)::

    atlas.png          the grid of icons (white where a cell is empty or dropped)
    icons/X_Y.png      each kept cell's icon (X: column, Y: row from the top)
    cells.csv          x,y,count,top_class,top_class_share (+ units: the cell's strongest units and their labels)
    cells.npy          (cells, C) float32: each listed cell's mean activation, in the CSV's order
    samples.csv        path,x,y: the cell of every sample laid out
    thumbs/<i>.png     small copies of the dataset images the page shows
    index.html         the zoomable page: hovering (or focusing) a cell shows its count, top classes,
                       units and the dataset images whose samples fall in it

A class comparison (``versus``) lays both classes' samples out together and writes one such set per
class in ``<class>/`` sub-folders, with ``atlas.png`` and ``index.html`` showing them side by side.
The page is plain HTML and CSS (no script): zoom levels are radio buttons, the details of a cell a
panel shown on ``:hover`` / ``:focus``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..html import escape as _e
from ..html import href as _href
from ..html import page
from ..io import atomic_write, csv_text, encode_image, resize, write_file
from .atlas import MIN_COUNT, Cells, Layout, grid_cells, render_icons, to_grid, top_classes, whitener
from .dissect import read_labels
from .run import Run

CSS = """
.zoom{margin:.5em 0}.zoom input{margin-left:1em}.sides{display:flex;gap:24px;flex-wrap:wrap;--cell:40px}
#z1:checked~.sides{--cell:40px}#z2:checked~.sides{--cell:80px}#z4:checked~.sides{--cell:160px}
.atlas{display:grid;gap:1px;background:#eee;border:1px solid #ccc;width:max-content}
.cell{position:relative;width:var(--cell);height:var(--cell);outline:none}
.cell>img{width:100%;height:100%;display:block}
.info{display:none;position:absolute;left:100%;top:0;z-index:9;background:#fff;border:1px solid #888;
padding:4px;width:230px;font-size:12px;box-shadow:2px 2px 6px #0004}
.cell:hover .info,.cell:focus .info{display:block}.cell:hover,.cell:focus{box-shadow:0 0 0 2px #c33;z-index:8}
.info img{width:52px;height:52px;margin:1px}
"""


def slug(text: str) -> str:
    """A class name as a folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "class"


def _units_text(mean: np.ndarray, labels: dict[int, str], k: int = 3) -> str:
    """The cell's ``k`` strongest units, each with its label when it has one: ``12 stripes; 4; 31``."""
    return "; ".join(f"{u} {labels[u]}" if u in labels else str(u) for u in np.argsort(-mean)[:k].tolist())


def picture(cells: Cells, icons: torch.Tensor) -> torch.Tensor:
    """(3, grid·s, grid·s): each icon (s px) in its cell, white elsewhere."""
    s, g = icons.shape[-1], cells.grid
    canvas = torch.ones(3, g * s, g * s)
    for (x, y), icon in zip(cells.xy.tolist(), icons):
        canvas[:, y * s:(y + 1) * s, x * s:(x + 1) * s] = icon
    return canvas


def _thumbs(run: Run, out: Path, images: set[int], side: int = 64) -> None:
    folder = out / "thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    for i in sorted(images):
        if not (folder / f"{i}.png").exists():
            write_file(folder / f"{i}.png", encode_image(resize(run.image(i)[None], (side, side))[0]), overwrite=True)


def write_side(run: Run, out: Path, lay: Layout, cells: Cells, icons: torch.Tensor, names: list[str] | None,
               labels: dict[int, str], examples: int) -> list[dict]:
    """One atlas's files in ``out``; returns one dict per kept cell for the page."""
    (out / "icons").mkdir(parents=True, exist_ok=True)
    rows, listed = [], []
    for (x, y), count, mean, members, icon in zip(cells.xy.tolist(), cells.count.tolist(), cells.means,
                                                  cells.members, icons):
        write_file(out / "icons" / f"{x}_{y}.png", encode_image(icon), overwrite=True)
        classes = top_classes(lay.predicted[members], names)
        images = list(dict.fromkeys(int(i) for i in lay.images[members]))[:examples]
        units = _units_text(mean, labels)
        rows.append([x, y, count, classes[0][0], f"{classes[0][1]:.4f}", units])
        listed.append({"x": x, "y": y, "count": count, "classes": classes, "images": images, "units": units})
    atomic_write(out / "cells.csv", csv_text(["x", "y", "count", "top_class", "top_class_share", "units"], rows))
    with open(out / "cells.npy", "wb") as f:
        np.save(f, cells.means.astype(np.float32))
    atomic_write(out / "samples.csv", csv_text(["path", "x", "y"], ([run.paths[int(lay.images[r])], *cells_xy]
                                                                for r, cells_xy in zip(cells.rows, _xy_of(lay, cells)))))
    write_file(out / "atlas.png", encode_image(picture(cells, icons)), overwrite=True)
    return listed


def _xy_of(lay: Layout, cells: Cells) -> list[list[int]]:
    return to_grid(lay.coords, cells.grid)[cells.rows].tolist()


def _grid_html(listed: list[dict], grid: int, prefix: str, title: str) -> str:
    parts = [f'<div><h2>{_e(title)}</h2><div class="atlas" style="grid-template-columns:repeat({grid},var(--cell));'
             f'grid-template-rows:repeat({grid},var(--cell))">']
    for c in listed:
        classes = ", ".join(f"{name} {share:.0%}" for name, share in c["classes"])
        thumbs = "".join(f'<img src="{_href(f"thumbs/{i}.png")}" alt="image {i}">' for i in c["images"])
        x, y = c["x"], c["y"]
        icon = _href(f"{prefix}icons/{x}_{y}.png")
        parts.append(f'<div class="cell" tabindex="0" style="grid-column:{x + 1};grid-row:{y + 1}" '
                     f'data-xy="{x}_{y}"><img src="{icon}" alt="cell {x},{y}"><div class="info"><b>cell {x},{y}</b> · '
                     f'{c["count"]} samples<br>top classes: {_e(classes)}<br>units: {_e(c["units"])}<br>{thumbs}'
                     "</div></div>")
    parts.append("</div></div>")
    return "".join(parts)


def write_page(out: Path, sides: list[tuple[str, str, list[dict]]], grid: int, title: str, meta: str) -> Path:
    """``out/index.html``: each side (title, folder prefix, cells) as a zoomable grid."""
    zoom = ('<div class="zoom">zoom <input type="radio" name="zoom" id="z1" checked><label for="z1">1×</label>'
            '<input type="radio" name="zoom" id="z2"><label for="z2">2×</label>'
            '<input type="radio" name="zoom" id="z4"><label for="z4">4×</label>')
    body = [f"<h1>{_e(title)}</h1>", f'<p class="meta">{_e(meta)}</p>', zoom,
            '<div class="sides">' + "".join(_grid_html(cells, grid, prefix, t) for t, prefix, cells in sides)
            + "</div></div>"]
    return write_file(out / "index.html", page(title, body, CSS), overwrite=True)


def write_atlas(run: Run, model, out: Path, layer: str, lay: Layout, sides: list[tuple[str, np.ndarray]], *,
                grid: int = 20, min_count: int = MIN_COUNT, size: int = 64, steps: int = 128, batch: int = 16,
                whiten: bool = False, examples: int = 6, seed: int = 0, progress: bool = False,
                ray: str | None = None) -> dict:
    """Bin, render and write an atlas of ``lay``: ``sides`` is [(title, sample rows)]: one (the whole
    layout, written into ``out``) or two (a class comparison, each into ``out/<title>/``). Returns
    ``{"cells": [Cells per side], "icons": [(cells, 3, size, size) per side], "picture": (3, H, W)}``;
    ``ray``: the icons rendered as Ray tasks (:func:`~synthviz.dataset.atlas.render_icons`)."""
    xy = to_grid(lay.coords, grid)
    names = list(model.classes) if model.classes else None
    labels = {unit: text for (name, unit), text in read_labels(run).items() if name == layer}
    white = whitener(lay.vectors) if whiten else None
    found, icons, listed = [], [], []
    for title, rows in sides:
        cells = grid_cells(lay, grid, min_count, rows, xy)
        rendered = render_icons(model, layer, cells.means, size=size, steps=steps, batch=batch, whiten=white,
                                seed=seed, progress=progress, ray=ray)
        folder = out if len(sides) == 1 else out / slug(title)
        cells_listed = write_side(run, folder, lay, cells, rendered, names, labels, examples)
        _thumbs(run, out, {i for c in cells_listed for i in c["images"]})
        prefix = "" if len(sides) == 1 else slug(title) + "/"
        found.append(cells), icons.append(rendered), listed.append((title, prefix, cells_listed))
    whole = picture(found[0], icons[0])
    if len(sides) > 1:
        gap = torch.ones(3, whole.shape[1], max(4, size // 4))
        whole = torch.cat([whole, gap, picture(found[1], icons[1])], 2)
        write_file(out / "atlas.png", encode_image(whole), overwrite=True)
    meta = (f"{run.model} · layer {layer} · {len(lay.vectors)} samples from {len(set(lay.images.tolist()))} images "
            f"({lay.method} layout, {grid}×{grid} grid, cells of at least {min_count}) · "
            f"icons: direction × cos², {steps} steps{', whitened' if whiten else ''}")
    title = f"Activation atlas of {layer}" + ("" if len(sides) == 1 else ": " + " vs ".join(t for t, _ in sides))
    write_page(out, listed, grid, title, meta)
    return {"cells": found, "icons": icons, "picture": whole, "page": out / "index.html"}
