"""Switches read from environment variables (``SYNTHVIZ_FUSE``, ``SYNTHVIZ_DEBUG``): one parser,
so every switch takes the same words and a typo is an error, not a silent default."""

from __future__ import annotations

import os

from .errors import BadValue

TRUE = ("1", "true", "yes", "on", "y", "t")
FALSE = ("0", "false", "no", "off", "n", "f")


def env_flag(name: str, default: bool) -> bool:
    """The yes/no value of environment variable ``name``: unset or empty -> ``default``; 1, true,
    yes, on (any case) -> True; 0, false, no, off -> False; anything else -> :class:`BadValue`."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise BadValue(f"{name}={os.environ[name]!r} is not a yes/no value; set it to 1 or 0 "
                   "(true/false, yes/no, on/off), or unset it")
