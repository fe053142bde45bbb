"""Writing files so that nothing a user made is lost: ``save_image`` and friends pick a free name
(``out-1.png``) unless ``overwrite=True``, refuse to write over an input image, and write through
a temporary file, so a crash or a full disk never leaves half a file under the real name."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from ..errors import BadImage, SynthvizError, WriteError
from .images import IMAGE_SUFFIXES, encode_image


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


BIT_DEPTHS = (8, 16)
SIXTEEN_BIT_SUFFIXES = {".png", ".tif", ".tiff"}


def check_bit_depth(bit_depth: int, path: str | os.PathLike | None = None) -> int:
    """8 or 16; 16 only for PNG and TIFF (a one-line error naming the fix otherwise)."""
    if bit_depth not in BIT_DEPTHS:
        raise SynthvizError(f"--bit-depth {bit_depth}: use 8 or 16")
    if bit_depth == 16 and path is not None and Path(path).suffix.lower() not in SIXTEEN_BIT_SUFFIXES:
        raise SynthvizError(f"cannot write {Path(path).name} at 16 bits; use a .png or .tif --out, or --bit-depth 8")
    return bit_depth


def to_uint16(image: torch.Tensor):
    """(3, H, W) in [0, 1] -> H x W x 3 uint16 (rounded to 0..65535)."""
    import numpy as np

    return (image.detach().double().clamp(0, 1) * 65535).round().cpu().numpy().astype(np.uint16).transpose(1, 2, 0)


def png16(array) -> bytes:
    """An H x W x 3 uint16 array as the bytes of a 16-bit RGB PNG (no filter, zlib; Pillow cannot write these)."""
    import struct
    import zlib

    h, w, _ = array.shape
    rows = array.astype(">u2").reshape(h, w * 6 // 2).view("u1").reshape(h, w * 6)
    import numpy as np

    raw = np.concatenate([np.zeros((h, 1), dtype="u1"), rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16 bits per sample, truecolour
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def encode16(image: torch.Tensor, suffix: str) -> bytes:
    """(3, H, W) in [0, 1] -> the bytes of a 16-bit PNG or TIFF."""
    array = to_uint16(image)
    if suffix.lower() == ".png":
        return png16(array)
    try:
        import imageio.v3 as iio

        return iio.imwrite("<bytes>", array, extension=suffix.lower())
    except (ImportError, ValueError, OSError) as e:
        raise SynthvizError(f"cannot write a 16-bit TIFF ({type(e).__name__}): pip install tifffile, "
                            "or use a .png --out") from None


def save_image(image: torch.Tensor, path: str | os.PathLike, overwrite: bool = False, bit_depth: int = 8) -> Path:
    """Save (3, H, W) or (1, 3, H, W) in [0, 1] as an 8-bit image (``bit_depth=16``: a 16-bit PNG
    or TIFF); returns the path written (a free variant of ``path`` if it exists and ``overwrite``
    is False). A crash never leaves half a file under the real name; an unknown extension is
    refused, never replaced."""
    path = check_writable(path, IMAGE_SUFFIXES)
    check_bit_depth(bit_depth, path)
    image = check_saveable(image)
    data = encode16(image, path.suffix) if bit_depth == 16 else encode_image(image, path.suffix)
    return write_file(path, data, overwrite)


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


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """The text of a CSV file: ``header`` then ``rows``, ``\\n`` line ends (the one CSV writer)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def state_bytes(state) -> bytes:
    """``state`` (plain tensors, numbers, strings, lists and dicts) as the bytes of a ``.pt`` file,
    for :func:`atomic_write` / :func:`write_file`; it reads back with ``torch.load(weights_only=True)``."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


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
