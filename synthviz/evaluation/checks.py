"""Maps that cannot be scored: NaN/inf values or no variation at all.

A metric computed on such a map is meaningless (a constant map gives every pixel the same rank,
so a deletion curve then only reflects the tie-breaking order). The evaluation reports the problem
in the ``notes`` column and leaves that map's metrics empty instead of scoring it silently.
"""

from __future__ import annotations

import torch


def map_problem(maps: torch.Tensor) -> list[str | None]:
    """One entry per map of (B, 1, H, W): ``"NaN map"``, ``"infinite map"``, ``"constant map"`` or None."""
    out: list[str | None] = []
    for m in maps.flatten(1):
        if torch.isnan(m).any():
            out.append("NaN map")
        elif torch.isinf(m).any():
            out.append("infinite map")
        elif float(m.max() - m.min()) <= 1e-12 * max(1.0, float(m.abs().max())):
            out.append("constant map")
        else:
            out.append(None)
    return out
