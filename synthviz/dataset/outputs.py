"""The plain files an indexing pass ends with: ``topk.csv``, ``bottomk.csv``, ``units.csv`` and
``skipped.txt``. Values are written as the shortest text that reads back as the same float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_write, csv_text
from .sources import Source
from .stats import UnitStats

EXAMPLE_COLUMNS = ["layer", "unit", "rank", "path", "value", "x", "y"]


def position_xy(position: int, info: dict) -> tuple[str, str]:
    """A stored position as (x, y) text in the layer's grid (``info``: the manifest's entry of the
    layer): maps ``(C, H, W)`` give both; a token layer's patch token its cell in the patch grid,
    a class token nothing (it stands for the whole image); tokens without a grid the token as x;
    vectors nothing."""
    shape, tokens = info["shape"], info.get("tokens")
    if position < 0:
        return "", ""
    if len(shape) == 3:
        return str(position % shape[2]), str(position // shape[2])
    if tokens is not None:
        if position < tokens["prefix"]:
            return "", ""
        y, x = divmod(position - tokens["prefix"], tokens["w"])
        return str(x), str(y)
    return str(position), ""


def _f(value) -> str:
    return str(np.float32(value))


def _examples_csv(source: Source, stats: dict[str, UnitStats], layers: dict, which: str) -> str:
    return csv_text(EXAMPLE_COLUMNS, _example_rows(source, stats, layers, which))


def _example_rows(source: Source, stats: dict[str, UnitStats], layers: dict, which: str):
    for name, s in stats.items():
        values, images, positions = (s.top_v, s.top_i, s.top_p) if which == "top" else (s.bot_v, s.bot_i, s.bot_p)
        for unit in range(values.shape[0]):
            for rank in range(values.shape[1]):
                i = int(images[unit, rank])
                if i < 0:
                    break
                x, y = position_xy(int(positions[unit, rank]), layers[name])
                yield [name, unit, rank + 1, source.paths[i], _f(values[unit, rank]), x, y]


def _units_csv(stats: dict[str, UnitStats]) -> str:
    return csv_text(["layer", "unit", "mean", "std", "min", "max"],
                    ([name, unit, _f(s.mean[unit]), _f(std), _f(s.bot_v[unit, 0]), _f(s.top_v[unit, 0])]
                     for name, s in stats.items() for unit, std in enumerate(s.std)))


def write_outputs(out: Path, source: Source, stats: dict[str, UnitStats], features: dict, layers: dict,
                  skipped: list[tuple[int, str]]) -> None:
    """Flush the feature memmaps and write the plain-text results into ``out``."""
    for feats in features.values():
        feats.flush()
    atomic_write(out / "topk.csv", _examples_csv(source, stats, layers, "top"))
    atomic_write(out / "bottomk.csv", _examples_csv(source, stats, layers, "bottom"))
    atomic_write(out / "units.csv", _units_csv(stats))
    write_skipped(out, source, skipped)


def write_skipped(out: Path, source: Source, skipped: list[tuple[int, str]]) -> None:
    """``skipped.txt``: path<TAB>reason of every image that could not be used, in index order."""
    atomic_write(out / "skipped.txt", "".join(f"{source.paths[i]}\t{reason}\n" for i, reason in sorted(skipped)))
