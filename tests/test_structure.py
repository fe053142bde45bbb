"""The shape of the house (issue 25): no import circle (imports inside functions count), no
package below ``techniques/`` importing it, each kit job in one module, no function over 100
lines. Read from the source with ``ast``, so a violation names the file and line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import synthviz

PACKAGE = Path(synthviz.__file__).parent
# the floors allowed to import techniques/: the techniques themselves and what sits above them
ABOVE_TECHNIQUES = ("synthviz.techniques", "synthviz.cli", "synthviz.gallery", "synthviz.presets",
                    "synthviz.__main__", "synthviz")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[tuple[str, int]]:
    """The synthviz modules one import statement loads (a package's ``__init__`` counts as the
    package; ``from pkg import sub`` names the submodule when it is one)."""
    targets = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in MODULES else stem for a in node.names]
    for name in names:
        while name and name not in MODULES:  # `import synthviz.io.images` etc.
            name = name.rpartition(".")[0]
        if name.startswith("synthviz"):
            targets.append((name, node.lineno))
    return targets


def _imports() -> dict[str, dict[str, int]]:
    graph: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        edges = graph.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target, line in _resolve(module, path, node):
                    if target != module:
                        edges.setdefault(target, line)
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _is_package_init_edge(a: str, b: str) -> bool:
    """A package's ``__init__`` importing its own submodules, and those importing siblings through
    the package, is how Python packages are built, not a circle between concepts."""
    return b.startswith(a + ".") or a.startswith(b + ".") and MODULES[b].name == "__init__.py"


def test_no_import_circle_counting_imports_inside_functions():
    graph = {m: {t: line for t, line in edges.items() if not _is_package_init_edge(m, t)}
             for m, edges in _imports().items()}
    circles = _cycles(graph)
    described = []
    for comp in circles:
        links = [f"{a} -> {b} ({MODULES[a].relative_to(PACKAGE.parent)}:{graph[a][b]})"
                 for a in comp for b in graph[a] if b in comp]
        described.append("; ".join(links))
    assert not circles, "import circles:\n" + "\n".join(described)


def test_nothing_below_techniques_imports_it():
    wrong = []
    for module, edges in _imports().items():
        if module.startswith(ABOVE_TECHNIQUES[:-1]) or module in ABOVE_TECHNIQUES:
            continue
        for target, line in edges.items():
            if target.startswith("synthviz.techniques"):
                wrong.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def _modules_matching(pattern: str, also: str | None = None) -> list[str]:
    hits = []
    for module, path in MODULES.items():
        text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        if re.search(pattern, text) and (also is None or re.search(also, text)):
            hits.append(module)
    return hits


def test_each_kit_job_lives_in_one_module():
    jobs = {
        "reading images with imageio": (r"(iio|imageio[.a-z0-9]*)\.(imread|imiter|imopen|improps)\(", None),
        "listing image folders": (r"\.(iterdir|rglob)\(|glob\.glob\(", r"IMAGE_SUFFIXES"),
        "rich progress bars": (r"rich\.progress", None),
        "HTML escaping": (r"html\.escape|from html import", None),
        "starting Ray": (r"ray\.init\(", None),
        "writing CSV": (r"csv\.writer\(", None),
        "serialising torch state": (r"(?m)^\s*torch\.save\(", None),  # a call, not an error message naming it
    }
    spread = {job: _modules_matching(*pattern) for job, pattern in jobs.items()}
    assert all(len(m) <= 1 for m in spread.values()), {j: m for j, m in spread.items() if len(m) > 1}
    # and each job is really done somewhere (the test would pass vacuously if a pattern went stale)
    assert all(spread.values()), {j: m for j, m in spread.items() if not m}


def test_no_function_over_100_lines():
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 100:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "\n".join(long)


def test_no_test_imports_from_a_conftest():
    """``from conftest import X`` finds whichever conftest.py pytest imported last (tests/docs/ has
    one too): shared test code lives in plain modules (tests/tiny.py, clihelp.py, browser.py)."""
    tests = Path(__file__).parent
    found = [f"{p.relative_to(tests)}:{i}" for p in sorted(tests.rglob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.match(r"\s*(from conftest import|import conftest)", line)]
    assert not found, f"import shared test code from tests/tiny.py or a helper module instead: {found}"


def test_every_benchmark_names_its_machine_in_the_same_words():
    """Every figure names the machine it was measured on: each script in benchmarks/ prints
    benchmarks/machine.py's line, and none describes the machine by itself."""
    import os
    import sys

    import torch

    bench = PACKAGE.parent / "benchmarks"
    scripts = sorted(p for p in bench.glob("*.py") if p.name != "machine.py")
    imports = r"(?m)^from machine import [\w, ]*\bmachine\b.*$"
    silent = [p.name for p in scripts if not re.search(imports, p.read_text())
              or not re.search(r"\bmachine\(", re.split(imports, p.read_text(), maxsplit=1)[1])]
    own = [p.name for p in scripts if re.search(r"platform\.|os\.cpu_count\(\)|get_device_name", p.read_text())]
    assert scripts and not silent and not own, {"not naming the machine": silent, "describing it themselves": own}
    sys.path.insert(0, str(bench))
    try:
        from machine import machine
    finally:
        sys.path.remove(str(bench))
    line = machine()
    assert line.startswith("machine: ") and f"{os.cpu_count()} cores" in line and torch.__version__ in line
    assert f"{torch.get_num_threads()} thread(s)" in line
