"""The gallery's HTML page: thumbnails in sections with escaped captions (recipe, model, unit, final
objective) and links to the full-size images and videos. One self-contained file: no server, no
external assets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..html import escape as _e
from ..html import img, link, page
from ..io import write_file

if TYPE_CHECKING:
    from .manifest import Manifest
    from .spec import Spec

# the gallery's own rules on top of synthviz.html.CSS: thumbnails fill their figure
CSS = """
figure img{width:100%;height:auto}.value{color:#036}
.failed{color:#a00;font-size:12px}.pending{color:#777;font-size:12px}
"""


def write_index(spec: Spec, manifest: Manifest, out: Path) -> Path:
    """``out/index.html``: sections of thumbnails with captions (recipe, model, unit, final
    objective), links to full-size images and videos; no scripts, no external assets, every text
    HTML-escaped, so it opens from the file system."""
    from ..version import __version__

    entries = [manifest.items.get(it.id) for it in spec.items]
    n_done = sum(1 for e in entries if e and e["status"] == "done")
    n_failed = sum(1 for e in entries if e and e["status"] == "error")
    n_pending = len(entries) - n_done - n_failed
    parts = [
        f"<header><h1>{_e(spec.title)}</h1>",
        f'<p class="desc">{_e(spec.description)}</p>' if spec.description else "",
        f'<p class="meta">{n_done} rendered, {n_failed} failed, {n_pending} pending · synthviz {_e(__version__)}</p>',
        "<nav>" + "".join(f'<a href="#s{i}">{_e(s.title)}</a>' for i, s in enumerate(spec.sections)) + "</nav></header>",
    ]
    for i, section in enumerate(spec.sections):
        parts.append(f'<section id="s{i}"><h2>{_e(section.title)}</h2>')
        if section.description:
            parts.append(f'<p class="desc">{_e(section.description)}</p>')
        parts.append('<div class="grid">')
        failed, pending = [], 0
        for item in section.items:
            entry = manifest.items.get(item.id)
            if entry is None:
                pending += 1
            elif entry["status"] != "done":
                failed.append(entry)
            else:
                parts.extend(_figure(entry, tile) for tile in entry["tiles"])
        parts.append("</div>")
        if failed:
            parts.append('<ul class="failed">' + "".join(
                f"<li>{_e(e['preset'])} {_e(json.dumps(e['params'], default=str)[:200])}: {_e(e['error'])}</li>"
                for e in failed) + "</ul>")
        if pending:
            parts.append(f'<p class="pending">{pending} item(s) not rendered yet: re-run the same command to resume.</p>')
        parts.append("</section>")
    index = out / "index.html"
    write_file(index, page(spec.title, parts, CSS), overwrite=True)
    return index


def _figure(entry: dict, tile: dict) -> str:
    width, height = tile.get("size", [128, 128])
    value = tile.get("value")
    lines = [f"<b>{_e(tile['unit'])}</b>", f"{_e(entry.get('recipe', entry['preset']))} · {_e(entry.get('model', ''))}"]
    if value is not None:
        lines.append(f'<span class="value">objective {value:.4g}</span>')
    if tile.get("measured"):
        lines.append(f'<span class="value">{_e(tile["measured"])}</span>')
    links = [link(entry["full"], "whole grid")] if entry.get("full") != tile["src"] else []
    if entry.get("video"):
        links.append(link(entry["video"], f'optimization ({entry["video"].rsplit(".", 1)[-1].upper()})'))
    if links:
        lines.append(" · ".join(links))
    alt = f"{entry['preset']}: {tile['unit']}"
    # wide figures (inversions in a row, saliency comparisons) keep the thumbnails' height
    box = min(1100, max(160, round(160 * width / max(1, height)))) + 8
    thumb = link(tile["src"], inner_html=img(tile["thumb"], alt, width, height))
    return f'<figure style="width:{box}px">{thumb}<figcaption>{"<br>".join(lines)}</figcaption></figure>'


