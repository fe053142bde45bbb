"""The one mask reader: a mask image or tensor -> an (H, W) map in [0, 1], with explicit rules.

* Levels: an 8-bit (16-bit) file is divided by 255 (65535), except a file whose values are all
  0 or 1 (a 0/1 mask saved in 8 bits, which would otherwise read as almost black): read as it is.
  Tensors and arrays are taken as values in [0, 1].
* Colour: ``soft`` takes the mean of R, G, B; ``binary`` counts a pixel when any channel is above
  half (a red outline on black is a mask). An alpha channel is ignored unless the colour is the
  same everywhere: then the mask is drawn in the alpha channel, and that is read.
* Size: a mask of another size than the image is resized to it, with a warning (printed by the
  CLI as a note) naming both sizes and saying when the aspect ratio differs.
* Empty: an all-zero mask selects nothing, an error naming the file unless ``allow_empty``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import BadImage, BadValue
from .decode import read_array

MODES = ("soft", "binary")


def _file_levels(array: np.ndarray) -> np.ndarray:
    """A stored (H, W) or (H, W, C) array -> float32 in [0, 1] by the rules of the module docstring."""
    if array.dtype == bool:
        return array.astype(np.float32)
    top = float(np.nanmax(array, initial=0))
    if np.issubdtype(array.dtype, np.integer):
        scale = 1.0 if top <= 1 else 255.0 if array.dtype == np.uint8 or top <= 255 else 65535.0
    else:
        scale = 255.0 if top > 1 else 1.0
    return array.astype(np.float32) / scale


def _colour_and_alpha(a: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) -> ((H, W, 1), None); (H, W, 2 | 4) -> (colour, alpha); (H, W, 3) -> (colour, None)."""
    if a.ndim == 2:
        return a[..., None], None
    if a.ndim == 3 and a.shape[2] in (2, 4):
        return a[..., :-1], a[..., -1]
    if a.ndim == 3 and a.shape[2] == 3:
        return a, None
    raise BadImage(f"a mask image must be grey, RGB or RGBA, not of shape {a.shape}")


def _from_file(path: str | os.PathLike, mode: str) -> torch.Tensor:
    """A mask file -> (H, W) float32 in [0, 1] (not yet thresholded)."""
    colour, alpha = _colour_and_alpha(_file_levels(read_array(path)))
    if alpha is not None and float(np.ptp(colour)) == 0 and float(np.ptp(alpha)) > 0:
        grey = alpha  # drawn in the alpha channel on a uniform colour
    else:
        grey = colour.max(-1) if mode == "binary" else colour.mean(-1)
    if not np.isfinite(grey).all():
        raise BadImage(f"the mask {path} contains NaN/inf values; save it as an 8-bit PNG")
    return torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))


def _from_tensor(mask, mode: str) -> torch.Tensor:
    """A tensor or array (H, W), (C, H, W) or (1, C, H, W) with C in {1, 3} -> (H, W) float32 in [0, 1]."""
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).detach().float().cpu()
    if m.dim() == 4 and m.shape[0] == 1:
        m = m[0]
    if m.dim() == 3 and m.shape[0] in (1, 3):
        m = m.amax(0) if mode == "binary" else m.mean(0)
    if m.dim() != 2:
        raise BadImage(f"a mask must be one (H, W), (1, H, W) or (1, 1, H, W) map, not of shape {tuple(m.shape)}")
    if not torch.isfinite(m).all():
        raise BadImage("the mask contains NaN/inf values; replace them (torch.nan_to_num) first")
    if float(m.max()) > 1 + 1e-3 or float(m.min()) < -1e-3:
        raise BadImage("a mask must be in [0, 1] (white = selected); divide an 8-bit mask by 255")
    return m.clamp(0, 1)


def _fit(m: torch.Tensor, size: tuple[int, int], label: str) -> torch.Tensor:
    """Resize (H, W) to ``size`` (h, w) bilinearly, with a warning naming both sizes."""
    h, w = m.shape
    if (h, w) == tuple(size):
        return m
    aspect = "" if abs(h / w - size[0] / size[1]) <= 1 / min(size) else " (another aspect ratio: it is stretched)"
    warnings.warn(f"{label} ({w}x{h}) is resized to the image's size ({size[1]}x{size[0]}){aspect}", stacklevel=3)
    return F.interpolate(m[None, None], size=tuple(size), mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)


def read_mask(mask, size: tuple[int, int] | None = None, mode: str = "soft", *,
              allow_empty: bool = False) -> torch.Tensor:
    """The one mask reader: an image file (path) or a tensor/array -> (H, W) float32 in [0, 1] on the CPU.

    Args:
        mask: a path to a mask image, or (H, W), (C, H, W), (1, C, H, W) values in [0, 1] (C = 1 or 3).
        size: (H, W) to resize to (bilinear; a warning names both sizes when they differ).
        mode: ``"soft"`` keeps grey levels (mean of R, G, B); ``"binary"`` gives 0/1, a pixel
            counting when any channel is above half (after resizing).
        allow_empty: accept a mask that selects nothing (else :class:`~synthviz.errors.BadValue`).
    """
    if mode not in MODES:
        raise BadValue(f"mask mode must be one of {', '.join(MODES)}, not {mode!r}")
    is_file = isinstance(mask, (str, os.PathLike))
    label = f"the mask {os.fspath(mask)}" if is_file else "the mask"
    m = _from_file(mask, mode) if is_file else _from_tensor(mask, mode)
    if size is not None:
        m = _fit(m, size, label)
    if mode == "binary":
        m = (m > 0.5).float()
    if not allow_empty and not bool((m > 0).any()):
        resized = f" at the image's size {size[1]}x{size[0]}" if size is not None else ""
        raise BadValue(f"{label} is empty (all zero{resized}): it selects nothing; "
                       "paint the region to select in white (non-zero)")
    return m
