"""The gallery's HTML page: thumbnails in sections with escaped captions (recipe, model, unit, final
objective) and links to the full-size images and videos. One self-contained file: no server, no
external assets."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..io import write_file

if TYPE_CHECKING:
    from .manifest import Manifest
    from .spec import Spec

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em;color:#222;background:#fafafa}
h1{margin:.2em 0}h2{margin:1.4em 0 .2em;border-bottom:1px solid #ccc}nav a{margin-right:1em}
.meta,.desc{color:#555}.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;max-width:100%;background:#fff;border:1px solid #ddd;padding:4px;box-sizing:border-box}
figure img{width:100%;height:auto;display:block;image-rendering:auto}
figcaption{font-size:12px;word-wrap:break-word}.value{color:#036}
.failed{color:#a00;font-size:12px}.pending{color:#777;font-size:12px}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _href(rel: str) -> str:
    return _e(quote(rel))


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
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">', f"<title>{_e(spec.title)}</title>", f"<style>{CSS}</style></head><body>",
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
    parts.append("</body></html>\n")
    index = out / "index.html"
    write_file(index, "\n".join(p for p in parts if p), overwrite=True)
    return index


def _figure(entry: dict, tile: dict) -> str:
    width, height = tile.get("size", [128, 128])
    value = tile.get("value")
    lines = [f"<b>{_e(tile['unit'])}</b>", f"{_e(entry.get('recipe', entry['preset']))} · {_e(entry.get('model', ''))}"]
    if value is not None:
        lines.append(f'<span class="value">objective {value:.4g}</span>')
    if tile.get("measured"):
        lines.append(f'<span class="value">{_e(tile["measured"])}</span>')
    links = [f'<a href="{_href(entry["full"])}">whole grid</a>'] if entry.get("full") != tile["src"] else []
    if entry.get("video"):
        links.append(f'<a href="{_href(entry["video"])}">optimization ({_e(entry["video"].rsplit(".", 1)[-1].upper())})</a>')
    if links:
        lines.append(" · ".join(links))
    alt = f"{entry['preset']}: {tile['unit']}"
    # wide figures (inversions in a row, saliency comparisons) keep the thumbnails' height
    box = min(1100, max(160, round(160 * width / max(1, height)))) + 8
    return (f'<figure style="width:{box}px"><a href="{_href(tile["src"])}"><img src="{_href(tile["thumb"])}" alt="{_e(alt)}" '
            f'width="{int(width)}" height="{int(height)}"></a><figcaption>{"<br>".join(lines)}</figcaption></figure>')


