"""Checks of numeric options, the same for the command line and Python: each returns the value
(so ``steps = positive("steps", steps)``) or raises :class:`~synthviz.errors.BadValue` with one
line that names the option and the fix. ``None`` passes every check (it means "the default")."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from .errors import BadValue


def _number(name: str, value, integer: bool = False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadValue(f"{name} must be {'an integer' if integer else 'a number'}, not {type(value).__name__} {value!r}")
    if integer and not float(value).is_integer():
        raise BadValue(f"{name} must be a whole number, not {value}")
    if not math.isfinite(float(value)):
        raise BadValue(f"{name} must be a finite number, not {value}")
    return int(value) if integer else value


def finite(name: str, value):
    """A real, finite number (not NaN, not inf)."""
    return None if value is None else _number(name, value)


def positive(name: str, value, integer: bool = False):
    """A finite number > 0 (a whole number when ``integer``)."""
    if value is None:
        return None
    value = _number(name, value, integer)
    if value <= 0:
        raise BadValue(f"{name} must be positive, not {value}")
    return value


def non_negative(name: str, value, integer: bool = False):
    """A finite number >= 0 (0 usually means "off")."""
    if value is None:
        return None
    value = _number(name, value, integer)
    if value < 0:
        raise BadValue(f"{name} must be 0 or more, not {value}")
    return value


def in_range(name: str, value, low: float, high: float, integer: bool = False):
    """A finite number in [``low``, ``high``]."""
    if value is None:
        return None
    value = _number(name, value, integer)
    if not low <= value <= high:
        raise BadValue(f"{name} must be in [{low:g}, {high:g}], not {value}")
    return value


def choice(name: str, value: str, choices: Iterable[str]) -> str:
    """One of ``choices``; the error lists them."""
    choices = list(choices)
    if value not in choices:
        raise BadValue(f"unknown {name} '{value}'; use one of: {', '.join(choices)}")
    return value
