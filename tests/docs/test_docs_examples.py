"""Every page of the documentation site: its Python blocks run as written (per page, in order, one
namespace, in a fresh folder holding the photos they name), its inline one-line calls name real
functions, and every picture it shows exists."""

from __future__ import annotations

import importlib
import re

import pytest

import synthviz
from docexamples import DOCS, ROOT, doc_pages, python_blocks

PAGES_WITH_CODE = [p for p in doc_pages() if python_blocks(p.read_text())]


def test_the_guides_have_python_examples():
    names = {p.name for p in PAGES_WITH_CODE}
    for page in ("getting-started.md", "synthesis.md", "style.md", "attribution.md", "trust.md",
                 "transformers.md", "datasets.md", "presets.md", "quality.md", "architecture.md"):
        assert page in names, f"docs/{page} has no Python example"


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: p.name)
def test_python_examples_run_as_written(page, photo_folder, run_blocks):
    run_blocks(page.read_text(), f"docs/{page.name}")
    if page.name == "architecture.md":  # the "how to add" recipes registered themselves and work
        added = set(synthviz.TECHNIQUES.names()) - run_blocks.saved_techniques
        assert added == {"negative_class"}
        assert isinstance(synthviz.negative_class(target=2, size=64, steps=2), synthviz.Result)


def test_inline_python_calls_in_the_docs_name_real_functions():
    calls = {c for p in doc_pages() for c in re.findall(r"`synthviz\.([a-z_]+(?:\.[a-z_]+)*)\(", p.read_text())}
    assert len(calls) >= 5, calls
    for dotted in calls:
        obj, path = synthviz, "synthviz"
        for part in dotted.split("."):  # a submodule (synthviz.judge) need not be imported yet
            path = f"{path}.{part}"
            obj = getattr(obj, part) if hasattr(obj, part) else importlib.import_module(path)
        assert callable(obj), dotted


def test_every_picture_the_docs_show_exists():
    """Pictures are relative to docs/; ``gallery/...`` is the repository's gallery, which the site's
    hook (docs/hooks.py) publishes beside the pages."""
    shown = [(p.name, src) for p in doc_pages() for src in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", p.read_text())]
    assert any(src.startswith("gallery/") for _, src in shown) and any(src == "unit-page.png" for _, src in shown)
    missing = [(page, src) for page, src in shown
               if not ((ROOT / src) if src.startswith("gallery/") else (DOCS / src)).is_file()]
    assert not missing, f"pictures that are not there: {missing}"


def test_every_picture_the_docs_keep_is_made_by_a_script():
    """A picture in docs/ comes from a script in benchmarks/ that names it (and prints the machine):
    none is made by hand and left to go stale. The gallery's pictures come from `synthviz gallery`."""
    scripts = "\n".join(p.read_text() for p in (ROOT / "benchmarks").glob("*.py"))
    pictures = [p.name for p in DOCS.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".gif", ".svg", ".webp")]
    assert pictures and not [name for name in pictures if name not in scripts], "pictures no script makes"
