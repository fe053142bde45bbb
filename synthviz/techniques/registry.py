"""The technique registry: ``@register_technique("name")`` and ``TECHNIQUES``."""


from __future__ import annotations

import functools
from collections.abc import Callable

from ..errors import SynthvizError
from ..registry import Registry
from ..result import Result

TECHNIQUES: Registry = Registry("technique", "run `synthviz presets` to see what each does")


def register_technique(name: str | None = None, *, example: dict | None = None,
                       options: Callable[[], dict] | None = None, replace: bool = False):
    """Register a technique.

    Args:
        example: keyword arguments that run it in a second or two (tiny size, few steps; images
            as ``"skimage:NAME"``, resolved like preset values): the contract test runs every
            registered technique with its example.
        options: for a technique that takes ``**options``, a function returning
            ``{option: default}`` (what presets may set).

    The result is stamped with the technique's name.
    """

    def deco(fn):
        key = name or fn.__name__

        @functools.wraps(fn)
        def technique(*args, **kwargs) -> Result:
            result = fn(*args, **kwargs)
            if not isinstance(result, Result):
                raise SynthvizError(f"technique {key} returned {type(result).__name__}, not a Result")
            result.technique = result.technique or key
            return result

        technique.options = options or (lambda: {})
        technique.example = dict(example or {})
        TECHNIQUES.register(key, replace=replace)(technique)
        return technique

    return deco
