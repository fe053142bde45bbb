"""The technique contract and the shape of the package.

Every registered technique runs through the one calling convention and returns a Result that
saves; no module imports (directly or through others) a module that imports it back; no module
is large or evaluates strings.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import synthviz
from synthviz.presets import resolve_params
from synthviz.result import Result

PACKAGE = Path(synthviz.__file__).parent
MAX_LINES = 360  # "~350 lines is a smell"


@pytest.mark.parametrize("name", synthviz.TECHNIQUES.names())
def test_every_technique_follows_the_contract(name, embedded, tmp_path):
    fn = synthviz.TECHNIQUES.get(name)
    assert fn.example, f"technique {name} registers no example (register_technique(..., example={{...}}))"
    first = next(iter(__import__("inspect").signature(fn).parameters))
    assert first == "model", f"technique {name} must take the model first, not {first!r}"
    kwargs = resolve_params(fn.example)
    result = fn(embedded, **kwargs)

    assert isinstance(result, Result) and result.technique == name
    images = result.images
    assert images.dim() == 4 and images.shape[1] == 3 and images.device.type == "cpu"
    assert torch.isfinite(images).all() and 0 <= images.min() and images.max() <= 1
    assert result.labels == [] or len(result.labels) == len(images)
    assert result.scores is None or result.scores.shape == (len(images),)
    assert result.picture().dim() == 3 and result.picture().shape[0] == 3
    json.dumps(result.info)  # JSON-serialisable as it stands: no tensors hidden in info

    path = result.save(tmp_path / f"{name}.png")
    picture = iio.imread(path)
    assert picture.shape == (*result.picture().shape[-2:], 3) and picture.dtype == np.uint8
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["technique"] == name and sidecar["count"] == len(images)
    for extra in result.extras:
        assert path.with_name(f"{path.stem}-{extra}.png").exists()
    assert result._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.save(tmp_path / f"{name}.png") != path  # never overwritten silently


def test_a_technique_is_reachable_as_synthviz_attribute():
    for name in synthviz.TECHNIQUES.names():
        assert getattr(synthviz, name) is synthviz.TECHNIQUES.get(name)


def test_registry_refuses_a_second_entry_with_the_same_name():
    from synthviz.errors import SynthvizError

    with pytest.raises(SynthvizError, match="already registered"):
        synthviz.register_technique("classviz")(lambda model=None: None)
    assert synthviz.TECHNIQUES.get("classviz").__wrapped__.__module__ == "synthviz.techniques.classviz"


# ------------------------------------------------------------------------------ package shape

def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _import_time_edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules imported when ``name`` is imported: module-level imports only (not inside
    functions, not under ``if TYPE_CHECKING``), resolved to the modules of this package."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    edges = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try, ast.With)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    edges.add(sub if sub in modules else base)

    visit(ast.parse(path.read_text()).body)
    return {e for e in edges if e in modules}


def test_no_module_imports_a_module_that_imports_it_back():
    modules = _modules()
    graph = {name: _import_time_edges(name, path, modules) for name, path in modules.items()}
    cycles = []

    def reaches(start: str, goal: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == goal:
                    return trail + [nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
        return None

    for name in graph:
        loop = reaches(name, name)
        if loop:
            cycles.append(" -> ".join(loop))
        # a package's __init__ imports its submodules (some dynamically, e.g. techniques.load_all):
        # a submodule that imports one of its own packages back is a cycle even when unseen here
        ancestors = {".".join(name.split(".")[:k]) for k in range(1, len(name.split(".")))}
        cycles += [f"{name} -> {a} (its own package)" for a in graph[name] & ancestors]
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles)[:10])


def test_modules_are_small_and_never_evaluate_strings():
    for name, path in _modules().items():
        text = path.read_text()
        assert len(text.splitlines()) <= MAX_LINES, f"{name} has {len(text.splitlines())} lines"
        tree = ast.parse(text)
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not calls & {"eval", "exec"}, name
        assert "__globals__" not in text, name
