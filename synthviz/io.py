"""Reading and writing images, grids and videos.

Images are float tensors (B, 3, H, W) in [0, 1]. Nothing a user made is overwritten silently:
``save_image`` and friends pick a free name (``out-1.png``) unless ``overwrite=True``, and
refuse to write over an input image.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import SynthvizError

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
        if a.max() > 1.0:
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
        raise SynthvizError(f"{source} has an unsupported shape {a.shape}; use an RGB, greyscale or RGBA image")
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].clamp(0, 1).contiguous()


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image file as (1, 3, H, W) in [0, 1].

    Args:
        size: resize so the longer side is ``size`` (an int) or to exactly (H, W).
    """
    import imageio.v3 as iio

    path = Path(path)
    if not path.exists():
        raise SynthvizError(f"image not found: {path}; check the path")
    if path.is_dir():
        raise SynthvizError(f"{path} is a folder, not an image; pass an image file")
    with warnings.catch_warnings():
        # imageio's plugins each try the file and leave it open when they fail on a non-image
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            array = iio.imread(path, index=0) if path.suffix.lower() == ".gif" else iio.imread(path)
        except Exception:
            array = None
            gc.collect()  # close the files the failed attempts hold, here rather than at a random later time
    if array is None:
        raise SynthvizError(f"cannot read {path} as an image (corrupt or not an image); use a PNG or JPEG file")
    image = to_tensor(array, source=str(path))
    return resize(image, size) if size else image


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


def free_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """``path`` itself if it is free (or ``overwrite``), else ``name-1.ext``, ``name-2.ext``..."""
    path = Path(path)
    if overwrite or not path.exists():
        return path
    i = 1
    while (candidate := path.with_name(f"{path.stem}-{i}{path.suffix}")).exists():
        i += 1
    return candidate


def check_writable(path: str | os.PathLike, suffixes: set[str] | None = None,
                   inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Fail early, before any render, if ``path`` cannot be written."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise SynthvizError(f"cannot write {path}: use one of {', '.join(sorted(suffixes))}")
    for given in inputs:
        if Path(given).exists() and path.exists() and path.resolve() == Path(given).resolve():
            raise SynthvizError(f"output {path} is an input image; choose another --out")
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise SynthvizError(f"cannot create folder {parent} for {path}; choose a writable --out") from None
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SynthvizError(f"cannot write to {path}; choose a writable --out")
    return path


def encode_image(image: torch.Tensor, suffix: str = ".png") -> bytes:
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> the bytes of an 8-bit image file (``.png``, ``.jpg``...)."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", to_uint8(image), extension=suffix.lower())


def write_file(path: str | os.PathLike, data: bytes | str, overwrite: bool = False) -> Path:
    """Write ``data`` atomically to ``path`` (or a free variant of it unless ``overwrite``), with a
    one-line error if it cannot be written; returns the path written."""
    path = free_path(path, overwrite)
    try:
        atomic_write(path, data)
    except OSError as e:
        raise SynthvizError(f"cannot write {path} ({e.strerror}); choose a writable --out") from None
    return path


def save_image(image: torch.Tensor, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save (3, H, W) or (1, 3, H, W) in [0, 1] as an 8-bit image; returns the path written
    (a free variant of ``path`` if it exists and ``overwrite`` is False). A crash never leaves
    half a file under the real name."""
    path = check_writable(path, IMAGE_SUFFIXES)
    return write_file(path, encode_image(image, path.suffix), overwrite)


def save_video(frames: Sequence[torch.Tensor], path: str | os.PathLike, fps: int = 12,
               overwrite: bool = False) -> Path:
    """Save frames (each (3, H, W) or (1, 3, H, W)) as a GIF or MP4 (imageio / imageio-ffmpeg)."""
    import imageio.v3 as iio

    path = free_path(check_writable(path, VIDEO_SUFFIXES), overwrite)
    arrays = [to_uint8(f) for f in frames]
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, np.stack(arrays), duration=1000 / fps, loop=0)
        return path
    import imageio.v2 as iio2  # the ffmpeg writer (imageio-ffmpeg) for MP4/WebM/MOV

    with iio2.get_writer(path, fps=fps, macro_block_size=1, quality=7) as writer:
        for a in arrays:
            writer.append_data(a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2])  # H.264 wants even sides
    return path


def make_grid(images: torch.Tensor, labels: Sequence[str] | None = None, ncol: int | None = None,
              pad: int = 2) -> torch.Tensor:
    """Tile (B, 3, H, W) into one (3, H', W') image, each tile with an optional label under it."""
    from torchvision.utils import make_grid as tv_grid

    images = images.detach().cpu().float().clamp(0, 1)
    if labels:
        images = torch.cat([label_image(im, text) for im, text in zip(images, labels)])
    ncol = ncol or int(np.ceil(np.sqrt(len(images))))
    return tv_grid(images, nrow=ncol, padding=pad, pad_value=1.0)


def label_image(image: torch.Tensor, text: str) -> torch.Tensor:
    """(3, H, W) -> (1, 3, H + 14, W) with ``text`` written under the image."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (image.shape[-1], 14), "white")
    ImageDraw.Draw(strip).text((2, 1), text, fill="black")
    band = torch.from_numpy(np.asarray(strip, dtype=np.float32) / 255).permute(2, 0, 1)
    return torch.cat([image, band], 1)[None]


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``path`` so that a crash or kill at any moment leaves either the old or the new file:
    a temporary file in the same folder, flushed to disk, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
