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
