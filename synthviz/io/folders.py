"""Finding image files: the one folder lister (the same suffix rules everywhere) and glob patterns.
Reading what is found, skipping what cannot be read, is :func:`~synthviz.io.images.read_images`."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from ..errors import BadImage
from .images import IMAGE_SUFFIXES


def is_image_file(path: Path) -> bool:
    """A file (not a folder) whose suffix, in any case, is one of :data:`IMAGE_SUFFIXES`."""
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def list_images(folder: str | os.PathLike, recursive: bool = False, allow_empty: bool = False) -> list[Path]:
    """The image files of ``folder`` (and of its sub-folders when ``recursive``), sorted by their
    path as text. Files only, chosen by suffix: whether each one reads is found when it is read.
    A missing folder, or one without images (unless ``allow_empty``), is a
    :class:`~synthviz.errors.BadImage` naming the fix."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "not found"
        raise BadImage(f"image folder {folder} {what}; pass a folder of images")
    found = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted((p for p in found if is_image_file(p)), key=str)
    if not files and not allow_empty:
        raise BadImage(f"no images found in {folder}; put PNG or JPEG files there "
                       f"(image files end in {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def glob_files(pattern: str) -> list[str]:
    """The files (not folders) a glob pattern matches (``**`` spans folders), sorted, written as
    glob writes them. Any suffix: the pattern says which files are meant."""
    return sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
