"""Network Dissection (Bau et al., CVPR 2017; the NetDissect-Lite procedure): a word for each unit
from a dataset with pixel masks.

Each unit's activation map is thresholded at its top ``quantile`` (0.5 %) over every position of
every image of the index, upsampled (bilinear) to the image, and compared with each class's mask:
IoU = Σ |unit ∩ class| / Σ |unit ∪ class| over the dataset. A unit's label is the class of its best
IoU when that is at least ``min_iou`` (0.04), else none.

Masks: one PNG of class ids per image (0: no class; its first channel when RGB), found in the
segmentation folder under the image's path relative to the dataset (``photos/cat/1.jpg`` ->
``SEG/cat/1.png``) or, failing that, under its file name. Class names: a text file, line ``i``
naming class id ``i`` (the first line is id 1).

    rows = dissect(run, "masks/", "names.txt")         # [{"layer", "unit", "label", "iou"}, ...]
    write_labels(run, rows)                            # RUN/labels.csv
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import in_range, positive
from ..errors import BadValue, SynthvizError
from ..io import csv_text, write_file
from ..layers import capture
from ..progress import progress as progress_bar
from .run import Run, open_run

BUDGET = 2**26  # activation values kept per layer for the quantiles (above it: a fixed subsample per image)


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Line ``i`` (from 1) names class id ``i``; blank lines keep their id with no name."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise BadValue(f"cannot read the class names {path}; give a text file, one class name per line") from None
    if not any(line.strip() for line in lines):
        raise BadValue(f"{path} names no class; write one class name per line (the first is class id 1)")
    return [line.strip() for line in lines]


def _dataset_root(run: Run) -> Path:
    """The folder image paths are relative to: the dataset folder, a list's folder, else the
    images' common folder (a glob, or a dataset given relative to another folder)."""
    root = Path(os.path.abspath(run.manifest["dataset"]))
    if root.is_file():
        root = root.parent
    if root.is_dir() and all(p.startswith(str(root) + os.sep) for p in run.paths):
        return root
    return Path(os.path.commonpath(run.paths)).parent


def find_mask(segmentation: Path, image: str, root: Path) -> Path | None:
    """The mask of ``image``: its path relative to ``root`` (as .png, or as it is) in ``segmentation``,
    else its file name there; None when there is none."""
    try:
        rel = Path(image).relative_to(root)
    except ValueError:
        rel = Path(Path(image).name)
    for candidate in (segmentation / rel.with_suffix(".png"), segmentation / rel,
                      segmentation / Path(image).with_suffix(".png").name):
        if candidate.is_file():
            return candidate
    return None


def read_classes(path: Path, size: int) -> torch.Tensor:
    """A mask of class ids as (size, size) int64 (nearest-neighbour resize)."""
    from ..io.decode import read_array

    a = np.asarray(read_array(path))
    ids = torch.from_numpy((a[..., 0] if a.ndim == 3 else a).astype(np.int64))
    return F.interpolate(ids[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()


def _maps(model, run: Run, layer: str, indices: list[int]) -> torch.Tensor:
    """(B, C, h, w) activation maps of ``layer`` over images ``indices`` of the run."""
    images = torch.stack([run.image(i) for i in indices])
    act = capture(model, images, [layer])[layer].float().cpu()
    if act.dim() != 4:
        raise SynthvizError(f"layer '{layer}' has no spatial map ({tuple(act.shape[1:])}); dissect a conv or token layer")
    return act


def thresholds(model, run: Run, layer: str, images: list[int], quantile: float, batch_size: int,
               bar=None) -> torch.Tensor:
    """(C,): each unit's top-``quantile`` level over every position of ``images``."""
    kept, gen = [], torch.Generator().manual_seed(0)
    for start in range(0, len(images), batch_size):
        act = _maps(model, run, layer, images[start:start + batch_size])
        values = act.transpose(0, 1).reshape(act.shape[1], -1)
        share = BUDGET / (act.shape[1] * act[0, 0].numel() * len(images))
        if share < 1:
            values = values[:, torch.rand(values.shape[1], generator=gen) < share]
        kept.append(values)
        if bar is not None:
            bar.advance(len(act))
    return torch.from_numpy(np.quantile(torch.cat(kept, 1).numpy(), 1 - quantile, axis=1)).float()


def ious(model, run: Run, layer: str, masks: dict[int, Path], level: torch.Tensor, classes: int,
         batch_size: int, bar=None) -> torch.Tensor:
    """(C, classes): each unit's IoU with each class id 1..classes over the images of ``masks``."""
    images = sorted(masks)
    inter = torch.zeros(len(level), classes, dtype=torch.float64)
    unit_area = torch.zeros(len(level), dtype=torch.float64)
    class_area = torch.zeros(classes, dtype=torch.float64)
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        act = F.interpolate(_maps(model, run, layer, chunk), size=(run.size, run.size), mode="bilinear",
                            align_corners=False)
        on = (act > level[None, :, None, None]).float()  # (B, C, S, S)
        ids = torch.stack([read_classes(masks[i], run.size) for i in chunk])  # (B, S, S)
        onehot = F.one_hot(ids.clamp(0, classes), classes + 1)[..., 1:].float()  # (B, S, S, K)
        inter += torch.einsum("bchw,bhwk->ck", on, onehot).double()
        unit_area += on.sum((0, 2, 3)).double()
        class_area += onehot.sum((0, 1, 2)).double()
        if bar is not None:
            bar.advance(len(chunk))
    return (inter / (unit_area[:, None] + class_area[None] - inter).clamp_min(1)).float()


def dissect(run: str | os.PathLike | Run, segmentation: str | os.PathLike, class_names: str | os.PathLike | list[str],
            *, layers: list[str] | None = None, quantile: float = 0.005, min_iou: float = 0.04, batch_size: int = 16,
            model=None, progress: bool = False) -> list[dict]:
    """Label the units of ``layers`` (default every indexed layer) of the index ``run`` from the masks
    in ``segmentation``. Returns one ``{"layer", "unit", "label", "iou"}`` per unit (label "" when
    the best IoU is below ``min_iou``; ``iou``: the best IoU, ``class``: its class name)."""
    from ..models import load_model

    run = open_run(run)
    in_range("quantile", quantile, 0, 1)
    in_range("min_iou", min_iou, 0, 1)
    positive("batch_size", batch_size, integer=True)
    names = class_names if isinstance(class_names, list) else read_class_names(class_names)
    seg = Path(segmentation)
    if not seg.is_dir():
        raise BadValue(f"segmentation folder not found: {seg}; give the folder of class-id masks")
    skipped = {p for p, _ in run.skipped}
    usable = [i for i, p in enumerate(run.paths) if p not in skipped]
    root = _dataset_root(run)
    masks = {i: m for i in usable if (m := find_mask(seg, run.paths[i], root)) is not None}
    if not masks:
        example = seg / Path(os.path.relpath(run.paths[usable[0]], root)).with_suffix(".png")
        raise SynthvizError(f"no mask in {seg} matches an image of the index; name each mask like its image "
                            f"(e.g. {example})")
    m = load_model(model if model is not None else run.model, run.settings["weights"])
    rows = []
    for layer in layers or run.layers:
        layer = run.check_layer(layer)
        with progress_bar(len(usable) + len(masks), f"dissect {layer}", unit="img", enabled=progress) as bar:
            level = thresholds(m, run, layer, usable, quantile, batch_size, bar)
            table = ious(m, run, layer, masks, level, len(names), batch_size, bar)
        best, which = table.max(1)
        for unit, (iou, k) in enumerate(zip(best.tolist(), which.tolist())):
            rows.append({"layer": layer, "unit": unit, "label": names[k] if iou >= min_iou else "", "iou": iou,
                         "class": names[k]})
    return rows


def write_labels(run: str | os.PathLike | Run, rows: list[dict], overwrite: bool = False,
                 score: str = "iou") -> Path:
    """``RUN/labels.csv``: ``layer,unit,label,<score>`` (an existing one only with ``overwrite``)."""
    run = open_run(run)
    text = csv_text(["layer", "unit", "label", score], ([r["layer"], r["unit"], r["label"], f"{r[score]:.4f}"] for r in rows))
    path = run.path / "labels.csv"
    if path.exists() and not overwrite:
        raise SynthvizError(f"{path} exists; pass --overwrite to replace it")
    return write_file(path, text, overwrite=True)


def label_source(run: str | os.PathLike | Run) -> str:
    """What made ``RUN/labels.csv``: ``Network Dissection`` (an ``iou`` column), ``CLIP-Dissect``
    (``score``); "" when there is none."""
    path = open_run(run).path / "labels.csv"
    if not path.exists():
        return ""
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    return "CLIP-Dissect" if "score" in header else "Network Dissection"


def read_labels(run: str | os.PathLike | Run) -> dict[tuple[str, int], str]:
    """``RUN/labels.csv`` as {(layer, unit): label} (units without a label left out; none: {})."""
    path = open_run(run).path / "labels.csv"
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["layer"], int(r["unit"])): r["label"] for r in csv.DictReader(f) if r.get("label")}
