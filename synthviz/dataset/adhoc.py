"""An index of a few images given in Python (files or tensors), in a temporary folder: so the
dataset techniques (neighbours, embedding, facets) also work on a handful of images without a
``synthviz index`` run first."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from ..errors import SynthvizError
from ..io import as_image, save_image, skipped_note
from ..models import Model
from .index import index
from .run import Run


@contextlib.contextmanager
def temporary_index(images: str | os.PathLike | Sequence[torch.Tensor | str | os.PathLike], model: Model,
                    layers: str | Sequence[str] | None, size: int = 128, top_k: int = 16,
                    samples_per_image: int = 0) -> Iterator[Run]:
    """Index ``images`` into a temporary folder that is removed on exit; yields the :class:`Run`.
    ``images``: what ``synthviz index`` takes (a folder, a glob, a .txt/.csv list), or a list of paths
    and tensors (1, 3, H, W) / (3, H, W) in [0, 1]. Files that cannot be used (unreadable, or below
    the model's minimum side) are skipped with a warning listing them; a tensor below that minimum
    is an error. ``samples_per_image``: activation samples kept (for an atlas)."""
    if images is None or (not isinstance(images, (str, os.PathLike)) and len(images) == 0):
        raise SynthvizError("no images given; pass run=RUN (an index folder) or images=[...]")
    with tempfile.TemporaryDirectory(prefix="synthviz-index-") as tmp:
        tmp = Path(tmp)
        dataset = images if isinstance(images, (str, os.PathLike)) else _listing(images, tmp, size, model)
        run = Run(index(dataset, tmp / "run", model=model, layers=layers, size=size, top_k=top_k,
                        workers=0, progress=False, samples_per_image=samples_per_image))
        if run.skipped:
            warnings.warn(skipped_note(run.skipped), stacklevel=3)
        yield run


def _listing(images: Sequence[torch.Tensor | str | os.PathLike], tmp: Path, size: int, model: Model) -> Path:
    """``tmp/images.txt`` listing the paths given and the tensors given, saved as PNGs beside it."""
    paths = []
    for i, image in enumerate(images):
        if isinstance(image, (str, os.PathLike)):
            paths.append(os.path.abspath(os.fspath(image)))
        else:
            small = as_image(image[None] if image.dim() == 3 else image, size,  # the pass reads it at size
                             min_side=model.min_size)
            paths.append(str(save_image(small[0], tmp / f"image-{i:04d}.png")))
    (tmp / "images.txt").write_text("".join(p + "\n" for p in paths), encoding="utf-8")
    return tmp / "images.txt"
