"""What ``evaluate`` reads: images (a file, a folder, a list, a tensor) and ground-truth masks,
through the io layer (one folder lister, one list reader that skips unreadable files, one mask reader)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from ..errors import SynthvizError
from ..io import check_image_size, list_images, read_all, read_mask, resize, skipped_note


def image_files(source: str | os.PathLike) -> list[Path]:
    """An image file -> [it]; a folder -> its image files, sorted (one-line error when there are none)."""
    path = Path(source)
    if path.is_dir():
        return list_images(path)
    if not path.exists():
        raise SynthvizError(f"image not found: {path}; check the path")
    return [path]


def load_images(images, size: int | None = None, min_side: int | None = None) -> dict[str, torch.Tensor]:
    """{name: (1, 3, H, W) in [0, 1]} from a path (file or folder), a list of paths, or a (B, 3, H, W)
    tensor. Files that cannot be read, or are too small for ``min_side`` (the model's minimum, as
    :func:`~synthviz.io.size_problem` rules), are skipped with a warning listing them (one file given
    alone that cannot be used is an error)."""
    if isinstance(images, torch.Tensor):
        x = images[None] if images.dim() == 3 else images
        if x.dim() != 4 or x.shape[1] != 3 or float(x.min()) < 0 or float(x.max()) > 1:
            raise SynthvizError(f"images must be (B, 3, H, W) in [0, 1], not {tuple(x.shape)}")
        check_image_size(*x.shape[-2:], size, min_side, "the images")
        x = resize(x.float(), size) if size else x.float()
        return {f"image{i}": x[i:i + 1] for i in range(len(x))}
    if images is None:
        raise SynthvizError("no images given; pass an image, a folder or a (B, 3, H, W) tensor")
    items = images if isinstance(images, (list, tuple)) else [images]
    paths = [p for item in items for p in image_files(item)]
    loaded, skipped = read_all(paths, size, where=", ".join(map(str, items)), min_side=min_side)
    if skipped:
        warnings.warn(skipped_note(skipped), stacklevel=2)
    return {p.name: image for p, image in loaded}


def load_masks(masks, images: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{image name: (1, 1, H, W) booleans at the image's size}: from a folder (a mask file with the
    image's stem, any image suffix; read by :func:`~synthviz.io.read_mask` in binary mode, resized
    to its image with a note when the sizes differ), a dict, or a (B, 1, H, W) tensor in the images'
    order. Images without a mask are left out; an all-zero mask file is an error."""
    if masks is None:
        return {}
    if isinstance(masks, dict):
        return dict(masks)
    if isinstance(masks, torch.Tensor):
        m = masks if masks.dim() == 4 else masks[:, None]
        if len(m) != len(images):
            raise SynthvizError(f"{len(m)} masks for {len(images)} images; give one mask per image")
        return {name: m[i:i + 1] for i, name in enumerate(images)}
    folder = Path(masks)
    if not folder.is_dir():
        raise SynthvizError(f"--masks must be a folder of mask images named like the images, not {folder}")
    by_stem = {p.stem: p for p in list_images(folder, allow_empty=True)}
    found = {name: read_mask(by_stem[Path(name).stem], tuple(image.shape[-2:]), mode="binary")[None, None] > 0.5
             for name, image in images.items() if Path(name).stem in by_stem}
    if not found:
        raise SynthvizError(f"no mask in {folder} is named like an image (e.g. {Path(next(iter(images))).stem}.png)")
    return found
