"""The dataset commands end to end: ``synthviz index`` (one-line errors, skipped files reported),
``neighbours``, ``embed``, ``filters``, ``facets``, and ``synthviz gallery --index`` writing unit pages
whose every relative link exists, checked in headless Chromium when it is installed."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from clihelp import one_line_error, run
from test_dataset import make_dataset
from browser import CHROMIUM, chromium_check


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = make_dataset(root / "photos")
    result = run("index", data, "--out", root / "run", "--layers", "_blocks.1,_blocks.3", "--size", 64,
                 "--top-k", 3, "--batch-size", 8, "--workers", 0)
    assert result.exit_code == 0, result.output
    return root, result.output


def test_index_writes_the_files_and_reports_skipped_images(indexed):
    root, output = indexed
    assert "indexed 16 images" in output and "1 skipped" in output
    manifest = json.loads((root / "run" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["settings"]["model"] == "efficientnet_lite0"
    rows = list(csv.DictReader(open(root / "run" / "topk.csv")))
    assert len(rows) == (24 + 40) * 3 and rows[0]["rank"] == "1"
    # a finished index is left as it is
    again = run("index", root / "photos", "--out", root / "run", "--layers", "_blocks.1,_blocks.3", "--size", 64,
                "--top-k", 3, "--batch-size", 8, "--workers", 0)
    assert again.exit_code == 0 and (root / "run" / "topk.csv").read_text() == open(root / "run" / "topk.csv").read()


def test_index_errors_are_one_line(indexed, tmp_path):
    root, _ = indexed
    one_line_error(run("index", tmp_path / "nowhere", "--out", tmp_path / "r"), "dataset not found")
    one_line_error(run("index", root / "photos", "--out", tmp_path / "r", "--layers", "_blocks.99"), "unknown layer")
    one_line_error(run("index", root / "photos", "--out", root / "run", "--size", 96, "--layers", "_blocks.1,_blocks.3",
                       "--top-k", 3, "--batch-size", 8), "other settings")
    one_line_error(run("neighbours", tmp_path, "0"), "not an index")


def test_neighbours_embed_filters_and_facets_commands(indexed, tmp_path):
    root, _ = indexed
    query = next((root / "photos" / "cat").glob("*-full.png"))
    result = run("neighbours", root / "run", query, "-k", 3, "--layer", "_blocks.3", "--out", tmp_path / "n.png")
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0].split()
    assert float(first[0]) == pytest.approx(1.0) and first[1] == str(query)
    sidecar = json.loads((tmp_path / "n.json").read_text())
    assert sidecar["technique"] == "neighbours" and len(sidecar["info"]["paths"]) == 3
    assert run("embed", root / "run", "--method", "pca", "--out", tmp_path / "e.png").exit_code == 0
    assert (tmp_path / "e.png").exists()
    assert run("filters", "--out", tmp_path / "f.png").exit_code == 0 and (tmp_path / "f.png").exists()
    result = run("facets", root / "run", 2, "--layer", "_blocks.3", "--facets", 2, "--size", 64, "--steps", 2,
                 "--out", tmp_path / "facets.png")
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "facets.json").read_text())["info"]["clusters"]) == 2


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value and not value.startswith(("data:", "#", "http")):
                self.links.append(value)


def relative_links(page: Path) -> list[Path]:
    parser = Links()
    parser.feed(page.read_text())
    return [(page.parent / unquote(urlparse(link).path)).resolve() for link in parser.links]


def test_gallery_index_adds_unit_pages_whose_links_all_exist(indexed, tmp_path):
    root, _ = indexed
    spec = tmp_path / "spec.toml"
    spec.write_text('title = "t"\n[[section]]\ntitle = "classes"\npreset = "classviz-lucid"\n'
                    'set = { size = 64, steps = 2 }\nover = { target = ["goldfish"] }\n')
    out = tmp_path / "g"
    result = run("gallery", spec, "--out", out, "--index", root / "run", "--units", "0-1",
                 "--unit-steps", 2)
    assert result.exit_code == 0, result.output
    home = out / "index.html"
    assert 'href="units/index.html"' in home.read_text()
    pages = [home, out / "units" / "index.html"] + sorted((out / "units").glob("*/*.html"))
    assert len(pages) == 2 + 2 * 2
    for page in pages:
        missing = [str(p) for p in relative_links(page) if not p.exists()]
        assert not missing, f"{page}: {missing}"
    unit = (out / "units" / "_blocks.3" / "1.html").read_text()
    for part in ("Feature visualization", "<svg", "Top patches", "Activation maps"):
        assert part in unit
    assert unit.count('src="1/patch-') == 3 and unit.count('src="1/map-') == 3
    # re-running keeps the renders and the gallery link appears once
    assert run("gallery", spec, "--out", out, "--index", root / "run", "--units", "0-1",
                 "--unit-steps", 2).exit_code == 0
    assert home.read_text().count('href="units/index.html"') == 1
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: the pages were checked as text only")
    for page in (out / "units" / "index.html", out / "units" / "_blocks.3" / "1.html"):
        found, console = chromium_check(page)
        assert found["images"] > 0 and found["bad"] == [] and found["errors"] == [] and console == []
