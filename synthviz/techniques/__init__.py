"""Techniques: each one a recipe of engine parts (parameterization, objective, regularizers,
transforms, optimizer) handed to :func:`synthviz.engine.render`. One recipe per module.

A technique is a function registered with ``@register_technique("name")``; every module of
this package is imported on first use, so a new technique is one new file. Registered
techniques are reachable as ``synthviz.<name>`` and from presets.
"""

import importlib
import pkgutil

from ..registry import Registry

TECHNIQUES: Registry = Registry("technique", "run `synthviz presets` to see what each does")
register_technique = TECHNIQUES.register


def load_all() -> Registry:
    """Import every technique module (each registers itself)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return TECHNIQUES
