"""The ``synthviz`` command: a Typer app; each module of this package adds one group of
commands to it (a new group is one new file)."""

from __future__ import annotations

import importlib
import pkgutil

from .app import app

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("app", "common"):
        importlib.import_module(f"{__name__}.{_info.name}")


def main() -> None:
    app()
