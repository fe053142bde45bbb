"""Targets beyond one class: several classes, a regression output, similarity to a reference
embedding, a segmentation class inside a mask."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import BadValue, SynthvizError
from ..io import load_image, read_mask
from .core import Target, _check_classes, main_output


def classes(indices: Sequence[int]) -> Target:
    """Multi-label: the sum of the chosen logits ``Σ_k out[:, k]``."""
    idx = torch.as_tensor(list(indices), dtype=torch.long)
    if idx.numel() == 0:
        raise BadValue("no classes given; write them like --classes 1,5,9")
    lo, hi = int(idx.min()), int(idx.max())

    def fn(out):
        flat = out.flatten(1)
        _check_classes(lo, hi, flat.shape[1], "the model")
        return flat[:, idx.to(out.device)].sum(1)

    return Target(fn, "sum of classes " + ",".join(map(str, idx.tolist())))


def output_index(index: int = 0) -> Target:
    """Element ``index`` of the flattened output: a regression head's value (``output_index(0)``)."""
    def fn(out):
        flat = out.flatten(1)
        if not 0 <= index < flat.shape[1]:
            raise BadValue(f"output index {index} is out of range: the output has {flat.shape[1]} values")
        return flat[:, index]

    return Target(fn, f"output[{index}]")


def cosine(reference: torch.Tensor, name: str = "similarity") -> Target:
    """Cosine similarity of the flattened output to ``reference`` (1 or B, ...) embeddings."""
    ref = reference.detach().flatten(1)

    def fn(out, rows):
        r = ref.to(out)[rows if len(ref) > 1 else torch.zeros_like(rows)]
        return F.cosine_similarity(out.flatten(1), r, dim=1)

    return Target(fn, name)


def similar_to(model, image: torch.Tensor | str | os.PathLike) -> Target:
    """Cosine similarity of ``model``'s output (an embedding) to its output on ``image``
    (a path or a (1 or B, 3, H, W) tensor in [0, 1])."""
    if isinstance(image, (str, os.PathLike)):
        if not os.path.exists(image):
            raise SynthvizError(f"reference image not found: {image}")
        x = load_image(image)
    else:
        x = image if image.dim() == 4 else image[None]
    with torch.no_grad():
        ref = main_output(model(x.to(model.device).float()))
    label = os.path.basename(str(image)) if isinstance(image, (str, os.PathLike)) else "the reference"
    return cosine(ref, f"similarity to {label}")


def in_mask(cls: int, mask: torch.Tensor | str | os.PathLike, reduce: str = "sum") -> Target:
    """Segmentation: class ``cls``'s scores (B, K, h, w) summed (or averaged, ``reduce="mean"``)
    over ``mask`` (H, W) or (B, H, W), or an image file read as on where it is above half grey.
    A mask of another size than the output is resized to it (nearest), with a note; an empty mask
    or a class beyond the output's is an error."""
    where = f" {os.fspath(mask)}" if isinstance(mask, (str, os.PathLike)) else ""
    m = read_mask(mask, mode="binary", allow_empty=True) if where else torch.as_tensor(mask).float()
    m = m.reshape(-1, *m.shape[-2:])
    if not bool((m.flatten(1) != 0).any(1).all()):
        raise BadValue(f"the mask{where} is empty (all zero): nothing to explain; mark the region to explain "
                       "in white (non-zero)")
    resized: dict = {}

    def on_output(out: torch.Tensor) -> torch.Tensor:
        """The mask at the output's (h, w), on its device, made once per size and device."""
        key = (tuple(out.shape[-2:]), out.device)
        if key not in resized:
            if tuple(m.shape[-2:]) != key[0]:
                warnings.warn(f"the mask{where} ({m.shape[-1]}x{m.shape[-2]}) is resized to the model's output "
                              f"({key[0][1]}x{key[0][0]})", stacklevel=4)
            mm = F.interpolate(m[:, None].to(out), size=key[0], mode="nearest")[:, 0]
            if not bool((mm.flatten(1) != 0).any(1).all()):
                raise BadValue(f"the mask{where} has no pixel left at the model's output size "
                               f"{key[0][1]}x{key[0][0]}; draw a larger region")
            resized[key] = mm
        return resized[key]

    def fn(out, rows):
        if out.dim() != 4:
            raise BadValue(f"a mask target needs a segmentation output (B, K, H, W), not {tuple(out.shape)}")
        _check_classes(cls, cls, out.shape[1], "the model")
        mm = on_output(out)
        mm = mm[rows if len(mm) > 1 else torch.zeros_like(rows)]
        total = (out[:, cls] * mm).sum((1, 2))
        return total / mm.sum((1, 2)).clamp(min=1) if reduce == "mean" else total

    return Target(fn, f"class {cls} in mask")
