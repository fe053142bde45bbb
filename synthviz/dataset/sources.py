"""Where a dataset's images come from, and reading them for a batched pass.

A dataset is a folder (searched recursively; an ImageFolder layout, one sub-folder per class,
gives labels), a glob pattern (``"photos/**/*.jpg"``), or a text/CSV file listing paths (one per
line; a CSV with a header takes its ``path`` column and an optional ``label`` column). Paths in a
list are relative to the list's folder. Every path is made absolute, so a run can be used from any
folder.

Reading is done per image in DataLoader workers through :func:`synthviz.io.read_images`: an image
that cannot be used (missing, corrupt, not an image, or below the model's minimum side: the one
size rule of :func:`synthviz.io.size_problem`) comes back as a reason instead of a tensor, so it is
skipped and listed, never fatal.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SynthvizError
from ..io import IMAGE_SUFFIXES, glob_files, list_images, load_image, read_images, why_unreadable

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
    """The images of ``dataset`` (a folder, a glob, or a .txt/.csv list), sorted for folders and
    globs, as absolute paths."""
    text = os.fspath(dataset)
    path = Path(text)
    if path.is_dir():
        paths = [str(p) for p in list_images(path, recursive=True, allow_empty=True)]
        labels = _folder_labels(path, paths)
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        paths, labels = _read_list(path)
    elif any(ch in text for ch in "*?["):
        paths = glob_files(text)
        labels = [""] * len(paths)
    elif path.is_file():
        raise SynthvizError(f"{path} is neither a folder, a glob nor a .txt/.csv list of images; pass a folder of images")
    else:
        raise SynthvizError(f"dataset not found: {text}; pass a folder of images, a glob in quotes or a .txt/.csv list")
    if not paths and path.is_file():
        raise SynthvizError(f"{text} lists no images; write one image path per line")
    if not paths:
        raise SynthvizError(f"no images found in {text}; image files end in {', '.join(sorted(IMAGE_SUFFIXES))}")
    return Source([os.path.abspath(p) for p in paths], labels, text)


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
    if not rows:
        return [], []
    header = [c.strip().lower() for c in rows[0]] if rows else []
    col, lab = 0, None
    if "path" in header:
        col, lab, rows = header.index("path"), header.index("label") if "label" in header else None, rows[1:]
    elif path.suffix.lower() == ".csv" and len(rows[0]) > 1 and not Path(base, rows[0][0].strip()).exists():
        rows = rows[1:]  # an unnamed header
    paths = [str(base / r[col].strip()) if not Path(r[col].strip()).is_absolute() else r[col].strip() for r in rows]
    labels = [r[lab].strip() if lab is not None and lab < len(r) else "" for r in rows]
    return paths, labels


def read_image(path: str, size: int, min_side: int | None = None) -> torch.Tensor:
    """One image file as (3, size, size) in [0, 1]: resized to a square without cropping
    (the aspect ratio is not kept), antialiased. Raises :class:`~synthviz.errors.BadImage` on
    anything unreadable, or on an image below ``min_side`` (:func:`synthviz.io.size_problem`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # greyscale and alpha are converted without a note per image
        return load_image(path, (size, size), min_side)[0]


class ImageBatches(torch.utils.data.Dataset):
    """Item ``b`` is batch ``b``: ``(first index, images (n, 3, size, size), kept indices, failures)``.

    Batches are fixed slices of the source (``[b * batch_size, (b + 1) * batch_size)``), so a pass
    resumed at batch ``b`` sees exactly the batches an uninterrupted one does.
    """

    def __init__(self, paths: list[str], size: int, batch_size: int, start_batch: int = 0,
                 min_side: int | None = None):
        self.paths, self.size, self.batch_size, self.start = paths, size, batch_size, start_batch
        self.min_side = min_side  # the model's minimum side: smaller images are skipped

    def __len__(self) -> int:
        return max(0, -(-len(self.paths) // self.batch_size) - self.start)

    def __getitem__(self, b: int):
        first = (b + self.start) * self.batch_size
        return load_batch(self.paths[first : first + self.batch_size], first, self.size, self.min_side)


def load_batch(paths: list[str], first: int, size: int, min_side: int | None = None):
    """Read ``paths`` (images ``first``, ``first + 1``...): ``(first, images (n, 3, size, size),
    indices of the images read, [(index, reason)] of those that could not be)``. Images below
    ``min_side`` (the model's minimum) are skipped with the size rule's reason."""
    images, kept, failed = [], [], []
    for i, path in enumerate(paths, first):
        why: list = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # greyscale and alpha are converted without a note per image
                read = [image[0] for _, image in read_images([path], (size, size), why, min_side)]
        except Exception as e:  # noqa: BLE001 - whatever else goes wrong with one file skips it alone
            read, why = [], [(path, why_unreadable(e))]
        if read:
            images.append(read[0])
            kept.append(i)
        failed += [(i, reason) for _, reason in why]
    stack = torch.stack(images) if images else torch.empty(0, 3, size, size)
    return first, stack, kept, failed


def batch_loader(paths: list[str], size: int, batch_size: int, workers: int, start_batch: int = 0,
                 min_side: int | None = None):
    """A DataLoader over :class:`ImageBatches` (each item already a batch), in order."""
    data = ImageBatches(paths, size, batch_size, start_batch, min_side)
    return torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=workers,
                                       prefetch_factor=2 if workers else None, persistent_workers=False)
