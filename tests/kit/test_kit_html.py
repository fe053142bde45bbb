"""The one HTML kit (synthviz.html) and the three pages on it (the gallery, the unit pages, the
evaluation report): a hostile name (``<script>``, quotes, ``&``) is shown as text everywhere, and
every relative link and image of a page resolves to its file when read back with a parser."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import imageio.v3 as iio
import numpy as np
import torch

from synthviz.html import data_uri, escape, href, img, link, page, table

HOSTILE = """<script>alert("x")</script> & 'q'"""
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;q&#x27;"


VOID = {"br", "img", "meta", "link", "input", "hr"}


class Parsed(HTMLParser):
    """The text, the link/image targets and the table cells of a page, as a browser reads them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.text, self.targets, self.cells, self.titles, self._in = [], [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self._in.append(tag)
        self.targets += [v for k, v in attrs if k in ("href", "src") and v]
        if tag in ("td", "th"):
            self.cells.append("")
        if tag == "title":
            self.titles.append("")

    @property
    def title(self) -> str:
        """The page's title (an SVG's own titles come after it)."""
        return self.titles[0]

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self._in and self._in[-1] == "title":
            self.titles[-1] += data
        if "td" in self._in or "th" in self._in:
            self.cells[-1] += data


def assert_safe(text: str) -> Parsed:
    """No hostile markup got through, and the hostile name reads back as itself."""
    assert "<script" not in text and ESCAPED in text
    parsed = Parsed(text)
    assert any(HOSTILE in t for t in parsed.text)
    return parsed


def assert_targets_exist(page_file: Path) -> int:
    parsed = Parsed(page_file.read_text())
    files = [t for t in parsed.targets if not t.startswith(("data:", "#"))]
    missing = [t for t in files if not (page_file.parent / unquote(t)).exists()]
    assert not missing, missing
    return len(files)


def test_escape_href_and_data_uri_read_back_as_given():
    assert escape(HOSTILE) == ESCAPED
    name = """items/a #1?<x>&'q".png"""
    parsed = Parsed(f'<a href="{href(name)}">x</a>')
    assert unquote(parsed.targets[0]) == name and "#" not in parsed.targets[0] and "?" not in parsed.targets[0]
    png = bytes(range(256))
    uri = Parsed(img(png, HOSTILE, 3, 4)).targets[0]
    assert base64.b64decode(uri.split(",", 1)[1]) == png and uri.startswith("data:image/png;base64,")
    assert data_uri(b"abc", "text/plain") == "data:text/plain;base64,YWJj"
    assert img("x y.png", width=5) == '<img src="x%20y.png" alt="" width="5">'
    assert Parsed(link("a&b.html", HOSTILE)).text == [HOSTILE]


def test_table_and_page_show_hostile_text_as_text():
    parsed = Parsed(table(["method", HOSTILE], [[HOSTILE, 1.5], ["b", None]], notes={HOSTILE: "low <"}))
    assert parsed.cells == ["method", HOSTILE + "low <", HOSTILE, "1.5", "b", "None"]
    text = page(HOSTILE, ["<p>one</p>", "", "<p>two</p>"], css="p{color:red}")
    parsed = assert_safe(text)
    assert parsed.title == HOSTILE and text.index("<p>one</p>\n<p>two</p>") > text.index("p{color:red}")
    assert text.startswith("<!doctype html>") and text.endswith("</body></html>\n")


def test_the_gallery_page_escapes_names_and_links_to_files_with_odd_names(tmp_path):
    from synthviz.gallery.manifest import Manifest
    from synthviz.gallery.page import write_index
    from synthviz.gallery.spec import Item, Section, Spec

    picture = "items/<b> #1?&'.png"
    (tmp_path / "items").mkdir()
    iio.imwrite(tmp_path / picture, np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "items/v&'.mp4").write_bytes(b"")
    done = Item("a", 0, HOSTILE, "classviz", {"target": HOSTILE})
    bad = Item("b", 0, "classviz-lucid", "classviz", {"target": HOSTILE})
    spec = Spec(HOSTILE, HOSTILE, [Section(HOSTILE, HOSTILE, "classviz-lucid", [done, bad])])
    manifest = Manifest(tmp_path)
    manifest.items = {
        "a": {"id": "a", "preset": HOSTILE, "recipe": HOSTILE, "model": HOSTILE, "status": "done", "params": {},
              "full": picture, "video": "items/v&'.mp4",
              "tiles": [{"unit": HOSTILE, "src": picture, "thumb": picture, "size": [8, 8], "value": 0.5}]},
        "b": {"id": "b", "preset": "classviz-lucid", "status": "error", "params": {"target": HOSTILE},
              "error": HOSTILE}}
    text = write_index(spec, manifest, tmp_path).read_text()
    parsed = assert_safe(text)
    assert parsed.title == HOSTILE and text.count(ESCAPED) >= 8
    assert assert_targets_exist(tmp_path / "index.html") == 3  # the thumbnail, its full size, the video


def test_unit_pages_escape_file_and_folder_names(tmp_path, tiny):
    from synthviz.dataset import index, write_unit_pages

    photos = tmp_path / HOSTILE.replace("/", "")  # a folder name cannot hold a slash
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        iio.imwrite(photos / f"{i} {HOSTILE.replace('/', '')}.png", rng.integers(0, 255, (16, 16, 3), np.uint8))
    run = index(photos, tmp_path / "run", model=tiny, layers=["conv2"], size=16, top_k=2, batch_size=2,
                workers=0, progress=False)
    write_unit_pages(run, tmp_path / "site", layers=["conv2"], units=[0], viz_steps=0, model=tiny)
    unit_page = tmp_path / "site/units/conv2/0.html"
    text = unit_page.read_text()
    name = HOSTILE.replace("/", "")
    assert "<script" not in text and escape(name) in text and any(name in t for t in Parsed(text).text)
    listing = (tmp_path / "site/units/index.html").read_text()
    assert "<script" not in listing and escape(name) in listing  # the dataset's folder
    assert assert_targets_exist(unit_page) == 1 + 2 + 2  # the unit index, top patches, activation maps
    assert assert_targets_exist(tmp_path / "site/units/index.html") == 2  # the unit page, its thumbnail


def test_the_evaluation_report_escapes_image_and_model_names():
    from torch import nn

    from synthviz.evaluation import evaluate_methods
    from synthviz.evaluation.report import index_html
    from synthviz.models import Model

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    model = Model(net, mean=(0, 0, 0), std=(1, 1, 1), classes=["c0", "c1"], name=HOSTILE, min_size=4)
    ev = evaluate_methods(model, {HOSTILE: torch.rand(1, 3, 16, 16)}, "gradient", checks=(), curve_steps=4, samples=2)
    text = index_html(ev)
    parsed = assert_safe(text)
    assert parsed.title == f"synthviz evaluate: {HOSTILE}"
    assert f"<h2>{ESCAPED}</h2>" in text and text.count("<svg") == 2 * len(ev.methods)
    pictures = [t for t in parsed.targets if t.startswith("data:image/png;base64,")]
    assert len(pictures) == 1 + len(ev.methods)  # the photo, then each method's map
    for uri in pictures:
        assert iio.imread(base64.b64decode(uri.split(",", 1)[1])).shape[-1] == 3
    assert parsed.cells[: 2] == ["method", "images"] and "gradient" in parsed.cells
