"""Writing files so that nothing a user made is lost: ``save_image`` and friends pick a free name
(``out-1.png``) unless ``overwrite=True``, refuse to write over an input image, and write through
a temporary file, so a crash or a full disk never leaves half a file under the real name."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
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


def save_image(image: torch.Tensor, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save (3, H, W) or (1, 3, H, W) in [0, 1] as an 8-bit image; returns the path written
    (a free variant of ``path`` if it exists and ``overwrite`` is False). A crash never leaves
    half a file under the real name; an unknown extension is refused, never replaced."""
    path = check_writable(path, IMAGE_SUFFIXES)
    return write_file(path, encode_image(check_saveable(image), path.suffix), overwrite)


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
