"""Techniques: each one a recipe of engine parts (parameterization, objective, regularizers,
transforms, optimizer) handed to :func:`synthviz.engine.render`. One recipe per module.

The contract every technique follows, so presets, the gallery, the CLI and Python treat them alike:

* one function registered with ``@register_technique("name")`` (every module of this package is
  imported on first use, so a new technique is one new file);
* model first (a name, a :class:`~synthviz.models.Model` or a plain ``nn.Module``), then its inputs
  (images, a class, a layer), then keyword-only options with type hints and defaults (presets check
  values against ``typing.get_type_hints``);
* it returns a :class:`~synthviz.result.Result`.

Registered techniques are reachable as ``synthviz.<name>`` and from presets.
"""

import importlib
import pkgutil

from .registry import TECHNIQUES, register_technique


def load_all():
    """Import every technique module (each registers itself)."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("registry", "common"):
            importlib.import_module(f"{__name__}.{info.name}")
    return TECHNIQUES


__all__ = ["TECHNIQUES", "load_all", "register_technique"]
