"""The one place that reads files with imageio: an image's pixels as stored, a video's frames and
its metadata. Everything above (image tensors, masks, folders of images, videos) is built on these.

A file that cannot be read raises :class:`UnreadableImage`, whose ``reason`` is the short form
listed among skipped files ("not found", "not an image or corrupt").
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import BadImage


class UnreadableImage(BadImage):
    """A file that cannot be read as an image. ``reason``: the short form for a list of skipped files."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def read_array(path: str | os.PathLike) -> np.ndarray:
    """An image file's pixels as stored: (H, W) or (H, W, C) in the file's dtype (uint8, uint16,
    float, bool). A GIF gives its first frame; a channel-first TIFF is turned channel-last and a
    single channel is dropped to (H, W). Raises :class:`UnreadableImage`."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.exists():
        raise UnreadableImage(f"image not found: {path}; check the path", "not found")
    if path.is_dir():
        raise UnreadableImage(f"{path} is a folder, not an image; pass an image file", "a folder, not an image")
    with warnings.catch_warnings():
        # imageio's plugins each try the file, warn, and leave it open when they fail on a non-image
        warnings.simplefilter("ignore")
        try:
            array = iio.imread(path, index=0) if path.suffix.lower() == ".gif" else iio.imread(path)
        except Exception:  # noqa: BLE001 - every plugin's failure means the same thing here
            array = None
            gc.collect()  # close the files the failed attempts hold, here rather than at a random later time
    if array is None:
        raise UnreadableImage(f"cannot read {path} as an image (corrupt or not an image); use a PNG or JPEG file",
                              "not an image or corrupt")
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)  # some TIFFs are channel-first
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    return array


def why_unreadable(error: BaseException) -> str:
    """The short reason listed for a file that could not be read (``"not found"``,
    ``"not an image or corrupt"``, or the error's first sentence)."""
    if isinstance(error, UnreadableImage):
        return error.reason
    if isinstance(error, FileNotFoundError):
        return "not found"
    text = " ".join(str(error).split())
    if "backend" in text or "cannot identify" in text.lower():
        return "not an image or corrupt"
    text = text.split(". ")[0][:120]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def video_meta(path: str | os.PathLike) -> dict:
    """imageio's metadata of a video or GIF (``fps``, ``duration``, ``plugin``...); raises what imageio raises."""
    import imageio.v3 as iio

    return iio.immeta(path)


def video_arrays(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames of a video or GIF, one (H, W, C) uint8 array at a time; raises what imageio raises."""
    import imageio.v3 as iio

    yield from iio.imiter(path)
