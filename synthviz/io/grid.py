"""Contact sheets: images tiled into one, each with an optional label under it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


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
