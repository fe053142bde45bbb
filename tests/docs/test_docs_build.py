"""The documentation site builds with ``mkdocs build --strict`` and no warning; its CLI reference is
generated from the Typer app (every command is on the page); the architecture page names every
package and module of synthviz; the API page documents only modules that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from docexamples import DOCS, ROOT

PACKAGE = ROOT / "synthviz"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-6000:]}"
    warnings = [line for line in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert not warnings, "mkdocs warned:\n" + "\n".join(warnings)
    return out


def test_the_site_builds_strict_with_every_page(site):
    for page in sorted(DOCS.glob("*.md")):
        built = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.is_file(), f"docs/{page.name} was not built"
    assert (site / "gallery" / "index.html").is_file()  # the repository's gallery is published with it
    assert (site / "unit-page.png").is_file()


def test_the_cli_reference_lists_every_command_from_the_app(site):
    import typer

    from synthviz.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="synthviz")
    page = (site / "cli" / "index.html").read_text()
    assert "<!-- cli-reference -->" not in page  # the marker was replaced
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        assert f"synthviz {name}" in page, f"`synthviz {name}` is missing from the CLI reference"
        for param in command.params:  # every option of every command, as the app declares it
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help" and not getattr(param, "hidden", False):
                    assert opt in page, f"`synthviz {name} {opt}` is missing from the CLI reference"
    source = (DOCS / "cli.md").read_text()  # generated at build time, not a hand copy
    assert "<!-- cli-reference -->" in source and "| `--" not in source and "## `synthviz" not in source


def test_the_architecture_page_names_every_package_and_module():
    text = (DOCS / "architecture.md").read_text()
    names = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()]
    names += [p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"]
    missing = sorted(n for n in names if not re.search(rf"\b{re.escape(n)}(/|\.py\b)", text))
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_the_api_page_documents_modules_that_exist():
    modules = re.findall(r"^::: (synthviz[\w.]*)", (DOCS / "api.md").read_text(), flags=re.M)
    assert len(modules) >= 10, modules
    def exists(module: str) -> bool:
        path = ROOT.joinpath(*module.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    missing = [m for m in modules if not exists(m)]
    assert not missing, f"docs/api.md documents modules that do not exist: {missing}"
