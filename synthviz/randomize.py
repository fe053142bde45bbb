"""The pieces of the model-randomization test of Adebayo et al. (2018), shared by the ``sanity``
technique and the evaluation's randomization check: the blocks of a model that can be
re-initialised (in forward order), their re-initialisation, and the rank correlation that says
how far a map moved. Randomize a copy (:meth:`synthviz.models.Model.copy`), never the user's model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .device import seeded
from .errors import SynthvizError
from .layers import Tap
from .models import Model


def randomization_blocks(model: Model, images: torch.Tensor) -> list[str]:
    """The model's blocks with parameters, in forward order (shallow to deep), for ``images``
    (B, 3, H, W) in [0, 1] (one forward of the first image finds the order).

    Containers (``Sequential``, ``ModuleList``, ``ModuleDict``) are opened, other modules are
    blocks: EfficientNet-Lite0 gives ``_conv_stem, _bn0, _blocks.0 .. _blocks.15, _conv_head,
    _bn1, _fc``; VGG its convolutions and linears; ResNet ``conv1, bn1, layer1.0, ..., fc``. A block
    whose output is not a tensor is opened into its children: a torchvision Faster R-CNN gives its
    backbone's stages, the FPN's convolutions, the RPN head's, then ``roi_heads.box_head``,
    ``roi_heads.box_predictor.cls_score`` and ``.bbox_pred``.
    """
    def units(prefix: str, module: nn.Module):
        for name, child in module.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(child, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
                yield from units(full, child)
            elif any(True for _ in child.parameters()):
                yield full, child

    candidates = dict(units("", model.net))
    for _ in range(8):  # a block whose output is no tensor (a detector's backbone, RPN, ROI heads) is opened
        with torch.no_grad(), Tap(model, candidates, truncate=False, strict=False) as tap:
            order = list(tap(images[:1].to(model.device)))  # the blocks that ran, in forward order
        silent = [name for name in candidates if name not in order and any(
            True for child in candidates[name].children() for _ in child.parameters())]
        if not silent:
            break
        candidates = {k: v for name, module in candidates.items()
                      for k, v in (units(name, module) if name in silent else [(name, module)])}
    if not order:
        raise SynthvizError(f"{model.name} has no layers with parameters to randomize")
    return order


def reinitialize(module: nn.Module) -> None:
    """Fresh random parameters (each layer's own ``reset_parameters``; BatchNorm statistics reset too)."""
    for sub in module.modules():
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
        elif hasattr(sub, "reset_running_stats"):
            sub.reset_running_stats()


def cascade(model: Model, blocks: Sequence[str], seed: int = 0) -> Iterator[tuple[str, Model]]:
    """``(block, copy)`` after each step of re-initialising ``blocks`` one more at a time, in the order
    given, on ONE private copy of ``model`` (changed in place from step to step; the user's model
    keeps its weights). Random state: ``seeded(seed)`` for the whole walk, work between steps included."""
    work = model.copy()
    modules = dict(work.net.named_modules())
    with seeded(seed):
        for block in blocks:
            reinitialize(modules[block])
            yield block, work


def randomize(model: Model, blocks: str | Sequence[str], seed: int = 0) -> Model:
    """A copy of ``model`` with the named blocks (a name or a list) re-initialised (:func:`cascade`'s
    last step); every other parameter and buffer is bit-for-bit the original's."""
    work = None
    for _, work in cascade(model, [blocks] if isinstance(blocks, str) else list(blocks), seed):
        pass
    return work if work is not None else model.copy()


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of |a| and |b| (any shapes with the same number of values)."""
    from scipy.stats import spearmanr

    x, y = a.abs().flatten().double().cpu().numpy(), b.abs().flatten().double().cpu().numpy()
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # a constant map has no ranking: no correlation
        return 0.0
    return float(spearmanr(x, y).statistic)
