"""Where a dataset's images come from, and reading them for a batched pass.

A dataset is a folder (searched recursively; an ImageFolder layout, one sub-folder per class,
gives labels), a glob pattern (``"photos/**/*.jpg"``), or a text/CSV file listing paths (one per
line; a CSV with a header takes its ``path`` column and an optional ``label`` column). Paths in a
list are relative to the list's folder.

Reading is done per image in DataLoader workers: an image that cannot be read (missing, corrupt,
not an image) comes back as a reason instead of a tensor, so it is skipped and listed, never fatal.
"""

from __future__ import annotations

import csv
import glob
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SynthvizError
from ..io import IMAGE_SUFFIXES, to_tensor

LIST_SUFFIXES = {".txt", ".csv", ".lst"}


@dataclass
class Source:
    """The images of a dataset, in a fixed order (row ``i`` of every output is ``paths[i]``)."""

    paths: list[str]
    labels: list[str]  # "" where the layout gives none
    root: str  # what the user gave

    def __len__(self) -> int:
        return len(self.paths)


def find_images(dataset: str | os.PathLike) -> Source:
    """The images of ``dataset`` (a folder, a glob, or a .txt/.csv list), sorted for folders and globs."""
    text = os.fspath(dataset)
    path = Path(text)
    if path.is_dir():
        paths = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        labels = _folder_labels(path, paths)
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        paths, labels = _read_list(path)
    elif any(ch in text for ch in "*?["):
        paths = sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
        labels = [""] * len(paths)
    elif path.is_file():
        raise SynthvizError(f"{path} is neither a folder, a glob nor a .txt/.csv list of images; pass a folder of images")
    else:
        raise SynthvizError(f"dataset not found: {text}; pass a folder of images, a glob in quotes or a .txt/.csv list")
    if not paths:
        raise SynthvizError(f"no images found in {text}; image files end in {', '.join(sorted(IMAGE_SUFFIXES))}")
    return Source(paths, labels, text)


def _folder_labels(root: Path, paths: list[str]) -> list[str]:
    """ImageFolder layout: every image one level below the root -> the sub-folder's name."""
    parts = [Path(p).relative_to(root).parts for p in paths]
    if all(len(p) == 2 for p in parts):
        return [p[0] for p in parts]
    return [""] * len(paths)


def _read_list(path: Path) -> tuple[list[str], list[str]]:
    base = path.parent
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and r[0].strip() and not r[0].lstrip().startswith("#")]
    header = [c.strip().lower() for c in rows[0]] if rows else []
    col, lab = 0, None
    if "path" in header:
        col, lab, rows = header.index("path"), header.index("label") if "label" in header else None, rows[1:]
    elif path.suffix.lower() == ".csv" and len(rows[0]) > 1 and not Path(base, rows[0][0].strip()).exists():
        rows = rows[1:]  # an unnamed header
    paths = [str(base / r[col].strip()) if not Path(r[col].strip()).is_absolute() else r[col].strip() for r in rows]
    labels = [r[lab].strip() if lab is not None and lab < len(r) else "" for r in rows]
    return paths, labels


def read_image(path: str, size: int) -> torch.Tensor:
    """One image file as (3, size, size) in [0, 1]: resized to a square without cropping
    (the aspect ratio is not kept), antialiased. Raises on anything unreadable."""
    import imageio.v3 as iio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array = iio.imread(path, index=0) if path.lower().endswith(".gif") else iio.imread(path)
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 2, 3, 4):
            array = np.moveaxis(array, 0, -1)  # some TIFFs are channel-first
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[..., 0]
        image = to_tensor(array, source=path)
    return F.interpolate(image, size=(size, size), mode="bicubic", align_corners=False,
                         antialias=True).clamp(0, 1)[0]


def _reason(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError):
        return "not found"
    text = " ".join(str(e).split())
    if "backend" in text or "cannot identify" in text.lower():
        return "not an image or corrupt"
    text = text.split(". ")[0][:120]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class ImageBatches(torch.utils.data.Dataset):
    """Item ``b`` is batch ``b``: ``(first index, images (n, 3, size, size), kept indices, failures)``.

    Batches are fixed slices of the source (``[b * batch_size, (b + 1) * batch_size)``), so a pass
    resumed at batch ``b`` sees exactly the batches an uninterrupted one does.
    """

    def __init__(self, paths: list[str], size: int, batch_size: int, start_batch: int = 0):
        self.paths, self.size, self.batch_size, self.start = paths, size, batch_size, start_batch

    def __len__(self) -> int:
        return max(0, -(-len(self.paths) // self.batch_size) - self.start)

    def __getitem__(self, b: int):
        first = (b + self.start) * self.batch_size
        return load_batch(self.paths[first : first + self.batch_size], first, self.size)


def load_batch(paths: list[str], first: int, size: int):
    """Read ``paths`` (images ``first``, ``first + 1``...): ``(first, images (n, 3, size, size),
    indices of the images read, [(index, reason)] of those that could not be)``."""
    images, kept, failed = [], [], []
    for i, path in enumerate(paths, first):
        try:
            images.append(read_image(path, size))
            kept.append(i)
        except Exception as e:  # noqa: BLE001 - any unreadable file is skipped with its reason
            failed.append((i, _reason(e)))
    stack = torch.stack(images) if images else torch.empty(0, 3, size, size)
    return first, stack, kept, failed


def batch_loader(paths: list[str], size: int, batch_size: int, workers: int, start_batch: int = 0):
    """A DataLoader over :class:`ImageBatches` (each item already a batch), in order."""
    data = ImageBatches(paths, size, batch_size, start_batch)
    return torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=workers,
                                       prefetch_factor=2 if workers else None, persistent_workers=False)
