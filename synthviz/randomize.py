"""The pieces of the model-randomization test of Adebayo et al. (2018), shared by the ``sanity``
technique and the evaluation's randomization check: the blocks of a model that can be
re-initialised (in forward order), their re-initialisation, and the rank correlation that says
how far a map moved. Randomize a copy (:meth:`synthviz.models.Model.copy`), never the user's model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

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


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of |a| and |b| (any shapes with the same number of values)."""
    from scipy.stats import spearmanr

    x, y = a.abs().flatten().double().cpu().numpy(), b.abs().flatten().double().cpu().numpy()
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # a constant map has no ranking: no correlation
        return 0.0
    return float(spearmanr(x, y).statistic)
