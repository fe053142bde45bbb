"""Images as tensors: reading one file, reading a list of files (skipping and listing those that
cannot be read), converting arrays, resizing, and :func:`as_image`, the one image validator.

Images are float tensors (B, 3, H, W) in [0, 1].
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import BadImage
from .decode import UnreadableImage, read_array, why_unreadable
from .sizes import check_image_size

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".gif", ".mp4", ".webm", ".mov"}


def to_tensor(array: np.ndarray, source: str = "image") -> torch.Tensor:
    """An H x W (x C) uint8/float array -> (1, 3, H, W) float in [0, 1]; grey and RGBA are converted with a note."""
    a = np.asarray(array)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    else:
        a = a.astype(np.float32)
        if np.nanmax(a, initial=0.0) > 1.0:
            a = a / 255.0
    if a.ndim == 2:
        warnings.warn(f"{source} is greyscale: converted to RGB", stacklevel=3)
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        warnings.warn(f"{source} has an alpha channel: composited over white and converted to RGB", stacklevel=3)
        a = a[..., :3] * a[..., 3:] + (1 - a[..., 3:])
    elif a.ndim == 3 and a.shape[2] == 2:
        warnings.warn(f"{source} is greyscale with alpha: converted to RGB", stacklevel=3)
        a = np.repeat(a[..., :1] * a[..., 1:] + (1 - a[..., 1:]), 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise BadImage(f"{source} has an unsupported shape {a.shape}; use an RGB, greyscale or RGBA image")
    if not np.isfinite(a).all():
        raise BadImage(f"{source} contains NaN/inf values; replace them (e.g. numpy.nan_to_num) first")
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].clamp(0, 1).contiguous()


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None,
               min_side: int | None = None) -> torch.Tensor:
    """Read an image file as (1, 3, H, W) in [0, 1].

    Args:
        size: resize so the longer side is ``size`` (an int) or to exactly (H, W).
        min_side: a model's minimum side: an image smaller than it, or whose shorter side at
            ``size`` is, is a :class:`~synthviz.errors.BadImage` (:func:`~synthviz.io.sizes.size_problem`).
    """
    image = to_tensor(read_array(path), source=str(path))
    check_image_size(*image.shape[-2:], size, min_side, str(path))
    return resize(image, size) if size else image


def read_images(paths: Iterable[str | os.PathLike], size: int | tuple[int, int] | None = None,
                skipped: list[tuple[Path, str]] | None = None,
                min_side: int | None = None) -> Iterator[tuple[Path, torch.Tensor]]:
    """The one way to read a list of image files: yields ``(path, (1, 3, H, W))`` one file at a
    time for those that read, and appends ``(path, reason)`` to ``skipped`` for the others
    (missing, corrupt, not an image, unusable pixels, too small for ``min_side``); callers report
    ``skipped`` (:func:`skipped_note`). ``size`` and ``min_side`` as in :func:`load_image`."""
    for path in paths:
        path = Path(path)
        try:
            image = load_image(path, size, min_side)
        except BadImage as e:
            if skipped is not None:  # "not found", or what is wrong with the pixels (without the path)
                reason = why_unreadable(e) if isinstance(e, UnreadableImage) else str(e).split(";")[0]
                skipped.append((path, reason.replace(str(path), "").strip(" :") or "unusable"))
            continue
        yield path, image


def read_all(paths: Iterable[str | os.PathLike], size: int | tuple[int, int] | None = None,
             where: str = "the images given",
             min_side: int | None = None) -> tuple[list[tuple[Path, torch.Tensor]], list[tuple[Path, str]]]:
    """Every readable image of ``paths`` at once: ``([(path, (1, 3, H, W))], [(path, reason)])``.
    One file alone that cannot be read raises its own error; several that all fail raise
    :class:`~synthviz.errors.BadImage` listing them (``where`` names their folder). ``size`` and
    ``min_side`` as in :func:`load_image`."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1:
        return [(paths[0], load_image(paths[0], size, min_side))], []
    skipped: list[tuple[Path, str]] = []
    loaded = list(read_images(paths, size, skipped, min_side))
    if not loaded:
        raise BadImage(f"no image in {where} could be read: {skipped_note(skipped)}; use PNG or JPEG files")
    return loaded, skipped


def skipped_note(skipped: list[tuple[Path, str]], limit: int = 5) -> str:
    """``"skipped 2 unreadable file(s): a.png (not an image or corrupt), b.jpg (not found)"``."""
    shown = ", ".join(f"{Path(p).name} ({reason})" for p, reason in skipped[:limit])
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"skipped {len(skipped)} unreadable file(s): {shown}{more}"


def resize(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize (B, 3, H, W); an int sets the longer side, keeping the aspect ratio."""
    h, w = image.shape[-2:]
    if isinstance(size, int):
        k = size / max(h, w)
        size = (max(1, round(h * k)), max(1, round(w * k)))
    if tuple(size) == (h, w):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> H x W x 3 uint8 (rounded, as a PNG stores it)."""
    if image.dim() == 4:
        image = image[0]
    return (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round to 8 bits, as saving to PNG and reading back does."""
    return (image.clamp(0, 1) * 255).round() / 255


def encode_image(image: torch.Tensor, suffix: str = ".png") -> bytes:
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> the bytes of an 8-bit image file (``.png``, ``.jpg``...)."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", to_uint8(image), extension=suffix.lower())


def _check_size(size) -> tuple[int | tuple[int, int] | None, int | None]:
    """(size, longer side) with every number checked positive."""
    from ..checks import positive

    if isinstance(size, (tuple, list)):
        size = tuple(positive("size", v, integer=True) for v in size)
    else:
        size = positive("size", size, integer=True)
    return size, max(size) if isinstance(size, tuple) else size


def as_image(image, size: int | None = None, what: str = "image", batch: bool = False,
             min_side: int | None = None) -> torch.Tensor:
    """The one image validator: a path, a list of paths or tensors, or a tensor -> a contiguous
    (B, 3, H, W) float tensor in [0, 1] (B == 1 unless ``batch``); ``size`` sets the longer side;
    ``min_side`` (a model's minimum) refuses an image too small for it, as :func:`load_image`.
    Wrong modes get one-line :class:`~synthviz.errors.BadImage` errors that name the fix (grey or
    RGBA channels, 0-255 values, NaN/inf values, several images where one is expected)."""
    from ..device import fits_in_memory

    size, side = _check_size(size)  # side: for the memory estimate
    if isinstance(image, (list, tuple)):
        if not batch:
            raise BadImage(f"{what} must be one image (a path or a (1, 3, H, W) tensor), not a list")
        if not image:
            raise BadImage(f"no {what} given; pass a (B, 3, H, W) tensor in [0, 1] or image paths")
        loaded = [as_image(im, size, what, min_side=min_side) for im in image]
        if len({tuple(t.shape) for t in loaded}) > 1:
            raise BadImage(f"the {what}s have different sizes; pass --size, or one image at a time")
        return torch.cat(loaded)
    if isinstance(image, (str, os.PathLike)):
        if side:
            fits_in_memory(16 * 3 * side * side, f"a {side} px {what}")
        return load_image(image, size, min_side)
    if not isinstance(image, torch.Tensor):
        raise BadImage(f"{what} must be a file path or a (1, 3, H, W) tensor in [0, 1], not {type(image).__name__}")
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or (image.shape[0] != 1 and not batch):
        raise BadImage(f"{what} has shape {tuple(image.shape)}; give one image as a (1, 3, H, W) tensor")
    channels = image.shape[1]
    if channels != 3:
        fix = "repeat the grey channel 3 times" if channels == 1 else "drop the alpha channel" if channels == 4 else "convert it to RGB"
        raise BadImage(f"{what} has {channels} channel(s) but RGB (3) is needed; {fix}")
    if not image.is_floating_point():
        raise BadImage(f"{what} is {str(image.dtype).replace('torch.', '')}, not float in [0, 1]; divide it by 255")
    if not torch.isfinite(image).all():
        raise BadImage(f"{what} contains NaN/inf values; replace them (torch.nan_to_num) first")
    if float(image.max()) > 1.0 + 1e-3 or float(image.min()) < -1e-3:
        raise BadImage(f"{what} is not in [0, 1] (an 8-bit image?); divide it by 255")
    image = image.float().clamp(0, 1)
    check_image_size(*image.shape[-2:], size, min_side, what)
    if side:
        fits_in_memory(16 * image.shape[0] * 3 * side * side, f"{what} at {side} px")
    # contiguous: a channels-last image would give a pixel parameter whose gradient L-BFGS cannot view
    return (resize(image, size) if size else image).contiguous()
