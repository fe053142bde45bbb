"""Reading and writing images, grids and videos.

Images are float tensors (B, 3, H, W) in [0, 1]. Nothing a user made is overwritten silently:
``save_image`` and friends pick a free name (``out-1.png``) unless ``overwrite=True``, and
refuse to write over an input image.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import BadImage, SynthvizError, WriteError

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


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image file as (1, 3, H, W) in [0, 1].

    Args:
        size: resize so the longer side is ``size`` (an int) or to exactly (H, W).
    """
    import imageio.v3 as iio

    path = Path(path)
    if not path.exists():
        raise BadImage(f"image not found: {path}; check the path")
    if path.is_dir():
        raise BadImage(f"{path} is a folder, not an image; pass an image file")
    with warnings.catch_warnings():
        # imageio's plugins each try the file and leave it open when they fail on a non-image
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            array = iio.imread(path, index=0) if path.suffix.lower() == ".gif" else iio.imread(path)
        except Exception:
            array = None
            gc.collect()  # close the files the failed attempts hold, here rather than at a random later time
    if array is None:
        raise BadImage(f"cannot read {path} as an image (corrupt or not an image); use a PNG or JPEG file")
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


def write_file(path: str | os.PathLike, data, overwrite: bool = False) -> Path:
    """Write ``data`` (bytes, text, or ``fn(tmp_path)`` that writes a file) atomically to ``path``
    (or a free variant of it unless ``overwrite``); returns the path written. A failed write (disk
    full, no permission) raises :class:`~synthviz.errors.WriteError` ("could not write PATH:
    reason") and leaves nothing behind: no 0-byte or half file, an existing file untouched."""
    path = free_path(path, overwrite)
    try:
        atomic_write(path, data)
    except OSError as e:
        raise WriteError(f"could not write {path}: {e.strerror or e}; free some space or choose another --out") from None
    return path


def check_saveable(image: torch.Tensor) -> torch.Tensor:
    """An image to save: a float (3, H, W) or (1, 3, H, W) tensor in [0, 1] with finite values."""
    if not isinstance(image, torch.Tensor):
        raise BadImage(f"can only save a (3, H, W) float tensor in [0, 1], not {type(image).__name__}")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise BadImage(f"can only save one (3, H, W) or (1, 3, H, W) image, not shape {tuple(image.shape)}; "
                       "use make_grid for several")
    if not image.is_floating_point():
        raise BadImage(f"the image is {str(image.dtype).replace('torch.', '')}, not float in [0, 1]; "
                       "divide it by 255 (image.float() / 255) first")
    if not torch.isfinite(image).all():
        raise BadImage("the image contains NaN/inf values; replace them (torch.nan_to_num) first")
    if float(image.max()) > 1.0 + 1e-3 or float(image.min()) < -1e-3:
        raise BadImage("the image is not in [0, 1] (0-255 values?); divide it by 255 or clamp it")
    return image


def save_image(image: torch.Tensor, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save (3, H, W) or (1, 3, H, W) in [0, 1] as an 8-bit image; returns the path written
    (a free variant of ``path`` if it exists and ``overwrite`` is False). A crash never leaves
    half a file under the real name; an unknown extension is refused, never replaced."""
    path = check_writable(path, IMAGE_SUFFIXES)
    return write_file(path, encode_image(check_saveable(image), path.suffix), overwrite)


def save_video(frames: Sequence[torch.Tensor], path: str | os.PathLike, fps: int = 12,
               overwrite: bool = False) -> Path:
    """Save frames (each (3, H, W) or (1, 3, H, W)) as a GIF or MP4 (imageio / imageio-ffmpeg),
    through the same atomic write as images: a full disk gives a one-line error and no file."""
    import imageio.v3 as iio

    path = check_writable(path, VIDEO_SUFFIXES)
    if not frames:
        raise BadImage(f"no frames to write to {path}")
    arrays = [to_uint8(check_saveable(f)) for f in frames]
    if path.suffix.lower() == ".gif":
        return write_file(path, iio.imwrite("<bytes>", np.stack(arrays), extension=".gif",
                                            duration=1000 / fps, loop=0), overwrite)

    def encode(tmp: Path) -> None:
        import imageio.v2 as iio2  # the ffmpeg writer (imageio-ffmpeg) for MP4/WebM/MOV

        try:
            with iio2.get_writer(tmp, format="FFMPEG", fps=fps, macro_block_size=1, quality=7) as writer:
                for a in arrays:
                    writer.append_data(a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2])  # H.264 wants even sides
        except OSError:
            raise
        except Exception as e:  # ffmpeg reports a failed write (disk full) as a broken pipe or its own error
            raise OSError(getattr(e, "errno", None) or errno.ENOSPC, f"the video encoder failed ({' '.join(str(e).split())[:120]})") from None
        # ffmpeg may end "successfully" after a failed write (a full disk): read the file back
        import imageio_ffmpeg

        try:
            count, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp))
        except Exception:
            count = 0
        if count != len(arrays):
            raise OSError(errno.ENOSPC, f"the video encoder could not finish the file ({count} of {len(arrays)} "
                                        "frames readable; disk full?)")

    return write_file(path, encode, overwrite)


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


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, so a page or manifest being written is finished;
    the interrupt is raised afterwards. A no-op outside the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def atomic_write(path: Path, data) -> None:
    """Write ``path`` so that a crash or kill at any moment leaves either the old or the new file:
    a temporary file in the same folder, flushed to disk, then ``os.replace``. ``data``: bytes,
    text, or ``fn(tmp_path)`` that writes the temporary file itself (a video encoder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the encoder of a callable picks its format by the extension: keep it at the end for those
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp" + (path.suffix if callable(data) else ""))
    try:
        if callable(data):
            data(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        else:
            with open(tmp, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def as_image(image, size: int | None = None, what: str = "image", batch: bool = False) -> torch.Tensor:
    """The one image validator: a path, a list of paths or tensors, or a tensor -> a contiguous
    (B, 3, H, W) float tensor in [0, 1] (B == 1 unless ``batch``); ``size`` sets the longer side.
    Wrong modes get one-line :class:`~synthviz.errors.BadImage` errors that name the fix (grey or
    RGBA channels, 0-255 values, NaN/inf values, several images where one is expected)."""
    from .checks import fits_in_memory, positive

    if isinstance(size, (tuple, list)):
        size = tuple(positive("size", v, integer=True) for v in size)
    else:
        size = positive("size", size, integer=True)
    side = max(size) if isinstance(size, tuple) else size  # for the memory estimate
    if isinstance(image, (list, tuple)):
        if not batch:
            raise BadImage(f"{what} must be one image (a path or a (1, 3, H, W) tensor), not a list")
        if not image:
            raise BadImage(f"no {what} given; pass a (B, 3, H, W) tensor in [0, 1] or image paths")
        loaded = [as_image(im, size, what) for im in image]
        if len({tuple(t.shape) for t in loaded}) > 1:
            raise BadImage(f"the {what}s have different sizes; pass --size, or one image at a time")
        return torch.cat(loaded)
    if isinstance(image, (str, os.PathLike)):
        if side:
            fits_in_memory(16 * 3 * side * side, f"a {side} px {what}")
        return load_image(image, size)
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
    if side:
        fits_in_memory(16 * image.shape[0] * 3 * side * side, f"{what} at {side} px")
    # contiguous: a channels-last image would give a pixel parameter whose gradient L-BFGS cannot view
    return (resize(image, size) if size else image).contiguous()
