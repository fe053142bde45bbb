"""User-facing errors: one line that names the fix, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SynthvizError(Exception):
    """An error caused by user input. The CLI prints its message as one line and exits 2."""


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" (did you mean: a, b?)"`` for the closest ``choices`` to ``word``, or ``""``."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=n, cutoff=0.5)
    if not close:  # substring hits help for long dotted names ("blocks.5" -> "_blocks.5")
        close = [c for c in choices if word.lower() in c.lower()][:n]
    return f" (did you mean: {', '.join(close)}?)" if close else ""


class BadValue(SynthvizError, ValueError):
    """An option out of its range or not one of its choices (``steps=0``, ``lr=nan``, ``score="prob"``)."""


class BadImage(SynthvizError, ValueError):
    """An image that cannot be used: wrong shape, dtype or range, NaN/inf values, unreadable file."""


class BadModel(SynthvizError, ValueError):
    """A model that cannot be used: unknown name, unreadable or non-finite weights, unknown layer or unit."""


class TooLarge(BadValue):
    """A size whose memory estimate exceeds what the machine has."""


class WriteError(SynthvizError, OSError):
    """An output that could not be written (disk full, no permission); nothing half-written is left."""
