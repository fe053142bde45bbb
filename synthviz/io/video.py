"""Videos in and out: frames read one at a time and counted (a file that ends before the frame
count its header announces is reported, never shortened silently), and frames written as a GIF
or MP4 through the same atomic write as images."""

from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import BadImage
from .decode import video_arrays, video_meta
from .images import VIDEO_SUFFIXES, to_tensor, to_uint8

# a file is said to end early when it gives fewer frames than this share of those its header
# announces (less one): the container's duration may include a slightly longer audio track
EARLY_END_SHARE = 0.95


def _unreadable(path, error: BaseException) -> BadImage:
    text = " ".join(str(error).split())
    if "moov atom not found" in text:
        return BadImage(f"cannot read {path} as a video: the file is cut short or damaged (its index, the "
                        "'moov atom', is missing); copy or export the video again")
    return BadImage(f"cannot read {path} as a video ({type(error).__name__}); use an MP4 or GIF file")


class VideoFrames:
    """The frames of a video or GIF, read one at a time as (1, 3, H, W) float in [0, 1].

    ``fps``: frames per second; ``expected``: the frame count the header announces (its duration
    times ``fps``; None when unknown, as for GIFs); ``count``: frames read so far; ``ended_early``:
    set when the file ended well before ``expected`` or broke off after some frames; a warning
    (printed by the CLI as a note) says how many frames were read. ``max_frames`` stops early on purpose.
    """

    def __init__(self, path: str | os.PathLike, max_frames: int | None = None):
        self.path, self.max_frames = Path(path), max_frames
        if not self.path.exists():
            raise BadImage(f"video not found: {self.path}; check the path")
        try:
            meta = video_meta(self.path)
        except (OSError, ValueError, RuntimeError) as e:
            raise _unreadable(self.path, e) from None
        fps = meta.get("fps")
        self.fps = float(fps or (1000.0 / meta["duration"] if meta.get("duration") else 12.0))
        duration = meta.get("duration") if meta.get("plugin") == "ffmpeg" else None
        self.expected = round(duration * fps) if fps and duration and np.isfinite(duration) else None
        self.count, self.ended_early = 0, False

    def __iter__(self) -> Iterator[torch.Tensor]:
        frames = video_arrays(self.path)
        try:
            while self.max_frames is None or self.count < self.max_frames:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except (OSError, ValueError, RuntimeError) as e:
                    if not self.count:
                        raise _unreadable(self.path, e) from None
                    self._report_end(f"it broke off ({type(e).__name__})")
                    return
                self.count += 1
                yield to_tensor(frame[..., :3] if frame.ndim == 3 else frame, source=str(self.path))
        finally:
            frames.close()
        if self.max_frames is None or self.count < self.max_frames:
            if not self.count:
                raise BadImage(f"{self.path} has no frames; use an MP4 or GIF file")
            if self.expected and self.count < EARLY_END_SHARE * self.expected - 1:
                self._report_end(f"its header announces {self.expected}")

    def _report_end(self, why: str) -> None:
        self.ended_early = True
        warnings.warn(f"{self.path} ended early: {self.count} frame(s) read, but {why}; the file is cut short "
                      f"or damaged, so only those {self.count} frame(s) are used", stacklevel=3)


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[torch.Tensor, float]:
    """(frames (T, 3, H, W) in [0, 1], frames per second) of a video or GIF; a file that ends early
    is read as far as it goes, with a warning (see :class:`VideoFrames`)."""
    video = VideoFrames(path, max_frames)
    return torch.cat(list(video)), video.fps


def save_video(frames: Sequence[torch.Tensor], path: str | os.PathLike, fps: int = 12,
               overwrite: bool = False) -> Path:
    """Save frames (each (3, H, W) or (1, 3, H, W)) as a GIF or MP4 (imageio / imageio-ffmpeg),
    through the same atomic write as images: a full disk gives a one-line error and no file."""
    import imageio.v3 as iio

    from .writing import check_saveable, check_writable, write_file

    path = check_writable(path, VIDEO_SUFFIXES)
    if not frames:
        raise BadImage(f"no frames to write to {path}")
    arrays = [to_uint8(check_saveable(f)) for f in frames]
    if path.suffix.lower() == ".gif":
        return write_file(path, iio.imwrite("<bytes>", np.stack(arrays), extension=".gif",
                                            duration=1000 / fps, loop=0), overwrite)
    return write_file(path, lambda tmp: _encode_ffmpeg(arrays, tmp, fps), overwrite)


def _encode_ffmpeg(arrays: list[np.ndarray], tmp: Path, fps: float) -> None:
    """Write H x W x 3 uint8 frames to ``tmp`` (MP4/WebM/MOV by its suffix) and read the count back."""
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
    except Exception:  # noqa: BLE001 - an unreadable result is a failed write
        count = 0
    if count != len(arrays):
        raise OSError(errno.ENOSPC, f"the video encoder could not finish the file ({count} of {len(arrays)} "
                                    "frames readable; disk full?)")
