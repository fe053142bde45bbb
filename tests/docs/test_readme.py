"""The README: at most 200 lines, the two set-up commands (the second is CI's, verbatim), Python
examples that run as written (in order, one namespace, in a folder holding the photos they name),
inline one-line calls that name real functions, gallery pictures that exist, links that resolve."""

from __future__ import annotations

import re

import pytest

import synthviz
from docexamples import README, ROOT, python_blocks

TEST_COMMAND = 'pip install -e ".[test]" && python -m pytest -q'


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section of a Markdown text."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"the README has no '## {title}' section"
    return match.group(1)


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"the README is {len(lines)} lines; move detail to docs/ (limit 200)"


def test_readme_setup_is_two_commands_and_the_second_is_the_ci_command():
    setup = section(README.read_text(), "Set-up (fresh machine)")
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", setup, flags=re.S | re.M)
    assert [lang for lang, _ in blocks] == ["bash", "bash"], blocks
    commands = [body.strip() for _, body in blocks]
    assert all("\n" not in c for c in commands), commands  # one command per block
    assert commands[0].startswith("pip install") and "synthviz gallery" in commands[0]
    assert commands[1] == TEST_COMMAND
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text()  # CI runs the README's command verbatim


def test_readme_has_python_examples():
    assert len(python_blocks(README.read_text())) >= 3


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_python_examples_run_as_written(photo_folder, run_blocks):
    namespace = run_blocks(README.read_text(), "README.md")
    assert isinstance(namespace["result"], synthviz.Result)
    assert (photo_folder / "classviz.png").exists() and (photo_folder / "classviz.json").exists()


def test_inline_python_calls_in_the_readme_name_real_functions():
    calls = set(re.findall(r"`synthviz\.([a-z_]+(?:\.[a-z_]+)*)\(", README.read_text()))
    assert calls, "no inline calls found"
    for dotted in calls:
        obj = synthviz
        for part in dotted.split("."):
            obj = getattr(obj, part)
        assert callable(obj), dotted


def test_every_gallery_file_the_readme_shows_exists():
    paths = set(re.findall(r"\]\((gallery/[^)\s]+)\)", README.read_text()))
    assert paths, "the README shows no gallery image"
    missing = sorted(p for p in paths if not (README.parent / p).is_file())
    assert not missing, f"the README shows gallery files that are not there (rebuilt gallery?): {missing}"


def test_every_local_link_in_the_readme_resolves():
    links = re.findall(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local), "the README links into no documentation page"
    missing = sorted({link for link in local if not (ROOT / link).exists()})
    assert not missing, f"the README links to files that do not exist: {missing}"
