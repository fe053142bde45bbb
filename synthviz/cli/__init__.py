"""The ``synthviz`` command: a Typer app; each module of this package adds one group of
commands to it (a new group is one new file)."""

from __future__ import annotations

import importlib
import pkgutil

from .app import app

# `synthviz --help` lists commands in import order: these first, any other group after them
_FIRST = ["models", "featureviz", "paint", "style", "saliency", "gallery"]
_names = [i.name for i in pkgutil.iter_modules(__path__) if i.name not in ("app", "common")]
for _name in sorted(_names, key=lambda n: (_FIRST.index(n) if n in _FIRST else len(_FIRST), n)):
    importlib.import_module(f"{__name__}.{_name}")


def main() -> None:
    app()
