"""The plain files a concepts run ends with, and reading them back.

``concepts.csv`` (``concept,rank,path,value``), ``importance.csv`` (``class,concept,importance``)
and ``metrics.json`` (``r2``, ``dead_fraction``, ``l0``), written from the encoding pass's arrays;
values are the shortest text that reads back as the same float32.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from ..dataset.sources import Source
from ..errors import SynthvizError
from ..io import atomic_write, csv_text
from ..models import Model
from .dictionary import Dictionary
from .train import sample_rows

METRIC_SAMPLES = 50_000  # positions the metrics are measured on (evenly spaced over the dataset)


def _f(value) -> str:
    return str(np.float32(value))


def top_images(best: np.ndarray, top: int) -> list[list[int]]:
    """Per concept, the indices of the ``top`` images with the largest coefficient (``best`` (N, K), NaN: skipped)."""
    valid = np.flatnonzero(~np.isnan(best[:, 0]))
    out = []
    for k in range(best.shape[1]):
        order = valid[np.argsort(-best[valid, k], kind="stable")]
        out.append([int(i) for i in order[:top]])
    return out


def metrics(dictionary: Dictionary, acts: np.ndarray, rows: np.ndarray, chunk: int = 8192) -> dict:
    """R² of the reconstruction, the fraction of concepts never active and the mean number of active
    codes per position (L0), on up to :data:`METRIC_SAMPLES` positions of ``acts`` (S, C)."""
    x = sample_rows(acts, rows, METRIC_SAMPLES)
    sse, used, l0 = 0.0, torch.zeros(dictionary.concepts, dtype=torch.bool), 0.0
    for part in x.split(chunk):
        z = dictionary.encode(part)
        sse += float((dictionary.decode(z) - part).double().pow(2).sum())
        used |= (z > 0).any(0)
        l0 += float((z > 0).sum())
    sst = float((x.double() - x.double().mean(0)).pow(2).sum())
    return {"r2": 1.0 - sse / max(sst, 1e-12), "dead_fraction": float((~used).float().mean()),
            "l0": l0 / max(len(x), 1), "samples": len(x)}


def write_outputs(out: Path, source: Source, model: Model, dictionary: Dictionary, acts: np.ndarray,
                  rows: np.ndarray, arrays: dict, top: int, importance: str = "gradient",
                  sobol_images: int | None = None) -> None:
    """``concepts.csv``, ``importance.csv`` and ``metrics.json`` from the encoding pass's ``arrays``
    (``importance``: how their ``share`` was computed, ``gradient`` or ``sobol``; a class's importance
    is the mean over the images predicted as it whose ``share`` is known, NaN rows left out:
    with sobol, the up to ``sobol_images`` images of the class it was estimated on)."""
    best, share, classes = (np.asarray(arrays[k]) for k in ("best", "share", "classes"))
    lines = [[k, rank, source.paths[i], _f(best[i, k])]
             for k, images in enumerate(top_images(best, top)) for rank, i in enumerate(images, 1)]
    atomic_write(out / "concepts.csv", csv_text(["concept", "rank", "path", "value"], lines))
    rows_out = []
    known = ~np.isnan(share).any(1)
    for c in sorted(set(int(c) for c in classes if c >= 0)):
        if not (known & (classes == c)).any():
            continue
        mean = share[known & (classes == c)].mean(0)
        rows_out += [[model.class_name(c), k, _f(v)] for k, v in enumerate(mean)]
    atomic_write(out / "importance.csv", csv_text(["class", "concept", "importance"], rows_out))
    found = metrics(dictionary, acts, rows)
    found.update(method=dictionary.method, layer=dictionary.layer, concepts=dictionary.concepts,
                 importance="sobol total index" if importance == "sobol" else "gradient x coefficient")
    if importance == "sobol":
        found["sobol_images"] = sobol_images  # per predicted class (0: every image of the class)
    atomic_write(out / "metrics.json", json.dumps(found, indent=2) + "\n")


def read_concepts(run: str | Path) -> dict[int, list[tuple[str, float]]]:
    """``concepts.csv`` of ``run`` as {concept: [(path, value), ...] by rank}."""
    path = Path(run) / "concepts.csv"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        found: dict[int, list[tuple[str, float]]] = {}
        for r in sorted(rows, key=lambda r: (int(r["concept"]), int(r["rank"]))):
            found.setdefault(int(r["concept"]), []).append((r["path"], float(r["value"])))
        return found
    except FileNotFoundError:
        raise SynthvizError(f"{run} holds no concepts.csv; learn one with `synthviz concepts DATASET --out {run}`") from None
    except (OSError, KeyError, ValueError, csv.Error):
        raise SynthvizError(f"{path} cannot be read; make the run again with --overwrite") from None


def read_importance(run: str | Path) -> dict[str, list[float]]:
    """``importance.csv`` of ``run`` as {class name: [importance of concept k, ...]}."""
    path = Path(run) / "importance.csv"
    found: dict[str, dict[int, float]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                found.setdefault(r["class"], {})[int(r["concept"])] = float(r["importance"])
    except FileNotFoundError:
        return {}
    except (OSError, KeyError, ValueError, csv.Error):
        raise SynthvizError(f"{path} cannot be read; make the run again with --overwrite") from None
    return {c: [v[k] for k in sorted(v)] for c, v in found.items()}
