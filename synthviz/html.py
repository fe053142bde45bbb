"""The one HTML kit behind every page synthviz writes (the gallery, the unit pages, the evaluation
report): the page shell with the shared CSS, escaping, and small helpers for links, images and
tables. Pages are single files with relative links (or images embedded as data URIs): no server,
no scripts, no external assets, so they open from disk.

Every helper escapes the text it is given; only arguments named ``*_html`` (and ``body``) are
taken as markup, so a caller never escapes by hand.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from html import escape as _escape
from urllib.parse import quote

# the look every page shares; a page adds its own rules through page(css=...)
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em;color:#222;background:#fafafa}
h1{margin:.2em 0}h2{margin:1.4em 0 .2em;border-bottom:1px solid #ccc}nav a{margin-right:1em}
.meta,.desc{color:#555}.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;max-width:100%;background:#fff;border:1px solid #ddd;padding:4px;box-sizing:border-box}
figure img{display:block;image-rendering:auto}figcaption{font-size:12px;word-wrap:break-word}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}
"""


def escape(value) -> str:
    """``str(value)`` safe as HTML text and inside a quoted attribute (``<>&"'`` escaped)."""
    return _escape(str(value), quote=True)


def href(path: str) -> str:
    """A relative path (``/``-separated) as an attribute value: percent-encoded, then escaped, so a
    file named ``a #1?.png`` or ``<x>.png`` still links to itself."""
    return escape(quote(str(path)))


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """``data`` embedded in the page as a ``data:`` URI (safe in an attribute as it is)."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def img(src: str | bytes, alt: str = "", width: int | None = None, height: int | None = None) -> str:
    """An ``<img>``: ``src`` is a relative path, or the PNG bytes themselves (embedded)."""
    url = data_uri(src) if isinstance(src, bytes) else href(src)
    size = "".join(f' {k}="{int(v)}"' for k, v in (("width", width), ("height", height)) if v is not None)
    return f'<img src="{url}" alt="{escape(alt)}"{size}>'


def link(path: str, text: str = "", *, inner_html: str | None = None) -> str:
    """``<a>`` to a relative ``path``, showing ``text`` (escaped) or ``inner_html`` (markup, e.g. an image)."""
    return f'<a href="{href(path)}">{escape(text) if inner_html is None else inner_html}</a>'


def table(columns: Sequence[str], rows: Iterable[Sequence], notes: Mapping[str, str] | None = None) -> str:
    """A table with a header row of ``columns`` (each with its small ``notes[column]`` beneath,
    when given) and one row per item of ``rows``; every cell is escaped text."""
    notes = notes or {}
    head = "".join(f"<th>{escape(c)}" + (f"<br><small>{escape(notes[c])}</small>" if notes.get(c) else "") + "</th>"
                   for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, body: Iterable[str], css: str = "") -> str:
    """A whole page: ``title`` (escaped) in the head, the shared CSS plus ``css``, then the
    ``body`` parts (markup) one per line; empty parts are left out."""
    head = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">', f"<title>{escape(title)}</title>",
            f"<style>{CSS}{css}</style></head><body>"]
    return "\n".join([*head, *(part for part in body if part), "</body></html>", ""])
