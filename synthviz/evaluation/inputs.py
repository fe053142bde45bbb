"""What ``evaluate`` reads: images (a file, a folder, a list, a tensor) and ground-truth masks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import SynthvizError
from ..io import IMAGE_SUFFIXES, load_image


def image_files(source: str | os.PathLike) -> list[Path]:
    """An image file -> [it]; a folder -> its image files, sorted (one-line error when there are none)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise SynthvizError(f"no images in {path}; put PNG or JPEG files there")
        return files
    if not path.exists():
        raise SynthvizError(f"image not found: {path}; check the path")
    return [path]


def load_images(images, size: int | None = None) -> dict[str, torch.Tensor]:
    """{name: (1, 3, H, W) in [0, 1]} from a path (file or folder), a list of paths, or a (B, 3, H, W) tensor."""
    if isinstance(images, torch.Tensor):
        x = images[None] if images.dim() == 3 else images
        if x.dim() != 4 or x.shape[1] != 3 or float(x.min()) < 0 or float(x.max()) > 1:
            raise SynthvizError(f"images must be (B, 3, H, W) in [0, 1], not {tuple(x.shape)}")
        from ..io import resize

        x = resize(x.float(), size) if size else x.float()
        return {f"image{i}": x[i:i + 1] for i in range(len(x))}
    if images is None:
        raise SynthvizError("no images given; pass an image, a folder or a (B, 3, H, W) tensor")
    paths = [p for item in (images if isinstance(images, (list, tuple)) else [images]) for p in image_files(item)]
    return {p.name: load_image(p, size) for p in paths}


def read_mask(path: str | os.PathLike) -> torch.Tensor:
    """A mask image -> (1, 1, H, W) booleans (any channel > half of the maximum value)."""
    import imageio.v3 as iio

    array = np.asarray(iio.imread(path))
    if array.ndim == 3:
        array = array[..., :3].max(-1) if array.shape[-1] in (3, 4) else array.max(-1)
    top = 255 if array.dtype == np.uint8 else max(1, array.max())
    return torch.from_numpy(array.astype(np.float32) / top > 0.5)[None, None]


def load_masks(masks, images: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{image name: (1, 1, H, W)}: from a folder (a mask file with the image's stem, any image suffix),
    a dict, or a (B, 1, H, W) tensor in the images' order. Images without a mask are left out."""
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
    by_stem = {p.stem: p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    found = {name: read_mask(by_stem[Path(name).stem]) for name in images if Path(name).stem in by_stem}
    if not found:
        raise SynthvizError(f"no mask in {folder} is named like an image (e.g. {Path(next(iter(images))).stem}.png)")
    return found
