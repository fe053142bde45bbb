"""The io layer: the one place where images, videos and masks are read, image folders listed,
and files written.

Images are float tensors (B, 3, H, W) in [0, 1]. Nothing a user made is overwritten silently:
``save_image`` and friends pick a free name (``out-1.png``) unless ``overwrite=True``, and
refuse to write over an input image.

* :mod:`.decode` — the only code that reads files with imageio (pixels, video frames, metadata);
* :mod:`.images` — :func:`load_image`, :func:`read_images` (a list, skipping and listing the
  files that cannot be read), :func:`to_tensor`, :func:`resize`, :func:`as_image` (THE image validator);
* :mod:`.folders` — :func:`list_images` (THE folder lister), :func:`glob_files`;
* :mod:`.masks` — :func:`read_mask` (THE mask reader, ``soft`` or ``binary``);
* :mod:`.video` — :class:`VideoFrames`, :func:`read_video` (a file that ends early is reported), :func:`save_video`;
* :mod:`.writing` — :func:`save_image`, :func:`write_file`, :func:`atomic_write`, :func:`free_path`,
  :func:`check_writable`, :func:`deferred_interrupt`;
* :mod:`.grid` — :func:`make_grid`, :func:`label_image`;
* :mod:`.sizes` — :func:`size_problem` (THE size rule: an image, and the image at ``--size``, at least a
  model's minimum on the shorter side), :func:`check_image_size`;
* :mod:`.claim` — :func:`claim_folder`, :func:`claim_file`: an output claimed at a run's start, so two
  runs into one ``--out`` at once cannot both say "saved" (a killed run's claim is stale at once).
"""

from __future__ import annotations

from .claim import OutputClaim, claim_file, claim_folder
from .decode import UnreadableImage, read_array, why_unreadable
from .folders import glob_files, is_image_file, list_images
from .grid import label_image, make_grid
from .images import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, as_image, encode_image, load_image, quantize, read_all,
                     read_images, resize, skipped_note, to_tensor, to_uint8)
from .masks import read_mask
from .sizes import check_image_size, scaled_shape, size_problem
from .video import VideoFrames, read_video, save_video
from .writing import (atomic_write, csv_text, state_bytes, check_saveable, check_writable, deferred_interrupt, free_path, save_image,
                      write_file)

__all__ = ["IMAGE_SUFFIXES", "OutputClaim", "UnreadableImage", "VIDEO_SUFFIXES", "VideoFrames", "as_image",
           "atomic_write", "check_image_size", "csv_text", "check_saveable", "check_writable", "claim_file", "claim_folder",
           "deferred_interrupt", "encode_image", "free_path", "glob_files", "is_image_file", "label_image",
           "list_images", "load_image", "make_grid", "quantize", "read_all", "read_array", "read_images",
           "read_mask", "read_video", "resize", "save_image", "save_video", "scaled_shape", "size_problem",
           "skipped_note", "state_bytes", "to_tensor", "to_uint8", "why_unreadable", "write_file"]
