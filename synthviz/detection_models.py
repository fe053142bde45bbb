"""torchvision detection and segmentation models by name: ``fasterrcnn_*``, ``retinanet_*``,
``fcos_*``, ``ssd*``, ``maskrcnn_*``, ``keypointrcnn_*`` (a list of per-image dicts: ``boxes``,
``labels``, ``scores``) and ``deeplabv3_*``, ``fcn_*``, ``lraspp_*`` (``{"out": (B, K, H, W)}``).

Each comes with its own preprocessing (a detector normalises and resizes inside its
``transform``: it is fed [0, 1] images as they are; a segmenter gets its weights' ImageNet
mean/std), the class names of its weights, and a CAM layer: a segmenter's last backbone stage
(``backbone.layer4``, ``backbone.16``); a detector's feature pyramid, ``backbone.pyramid``: the
backbone's levels {name: (B, C, h_i, w_i)} laid side by side as one (B, ΣC, H, W) map at the
finest level's size (each cell repeated), which the rest of the detector reads back exactly, so
every CAM method gets one map and its gradient with respect to all levels (pytorch-grad-cam's
``fasterrcnn_reshape_transform`` resizes the levels to the coarsest one and works only for
gradient-free CAMs). ``--weights random`` builds with ``weights_backbone=None`` too (no
ImageNet backbone download)::

    model = synthviz.load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights="random")
    dets = model(torch.rand(1, 3, 128, 128))          # [{"boxes": (N, 4), "labels": (N,), "scores": (N,)}]
"""

from __future__ import annotations

import copy
import os
import sys
from collections import OrderedDict

import torch
from torch import nn

from .checkpoints import from_checkpoint, seeded_init
from .errors import SynthvizError
from .models import IMAGENET_MEAN, IMAGENET_STD, Model, register_model, register_wrapper

DETECTION_PREFIXES = ("fasterrcnn_", "retinanet_", "fcos_", "ssd", "maskrcnn_", "keypointrcnn_")
SEGMENTATION_PREFIXES = ("deeplabv3_", "fcn_", "lraspp_")
PYRAMID = "backbone.pyramid"  # a detector's CAM layer


def _names(module, prefixes) -> list[str]:
    import torchvision

    return [n for n in torchvision.models.list_models(module=module) if n.startswith(prefixes)]


def detection_names() -> list[str]:
    import torchvision.models.detection as det

    return _names(det, DETECTION_PREFIXES)


def segmentation_names() -> list[str]:
    import torchvision.models.segmentation as seg

    return _names(seg, SEGMENTATION_PREFIXES)


def task_of(model) -> str | None:
    """``"detection"``, ``"segmentation"`` or None (a classifier, an embedder...)."""
    return getattr(model, "task", None)


def keep_scores_from(model: Model, min_score: float) -> None:
    """Let a detector keep detections scoring down to ``min_score``: its own threshold (Faster
    R-CNN's ``roi_heads.score_thresh``, RetinaNet's, FCOS's and SSD's ``score_thresh``) is lowered
    when it is higher. Changes ``model.net``: for synthviz's own models (the command line)."""
    holder = getattr(model.net, "roi_heads", model.net)
    if isinstance(getattr(holder, "score_thresh", None), float) and holder.score_thresh > min_score:
        holder.score_thresh = float(min_score)


# --------------------------------------------------------------------------- the feature pyramid as one map

def _source(n: int, size: int, device) -> torch.Tensor:
    """(size,) the source cell of each cell of an ``n``-cell axis repeated to ``size`` (nearest)."""
    return torch.arange(size, device=device) * n // size


class _Shrink(torch.autograd.Function):
    """(B, C, H, W) repeated cells -> (B, C, h, w): forward reads each cell's first copy (exact);
    backward spreads the gradient evenly over the copies (the gradient of their mean, equal to
    the first copy on this map): a CAM sees no checkerboard, and the input gradient is exact."""

    @staticmethod
    def forward(ctx, big: torch.Tensor, h: int, w: int) -> torch.Tensor:
        rows, cols = _source(h, big.shape[2], big.device), _source(w, big.shape[3], big.device)
        ctx.save_for_backward(rows, cols)
        ctx.hw = (h, w)
        first_r = torch.searchsorted(rows, torch.arange(h, device=big.device))
        first_c = torch.searchsorted(cols, torch.arange(w, device=big.device))
        return big.index_select(2, first_r).index_select(3, first_c)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows, cols = ctx.saved_tensors
        h, w = ctx.hw
        count = (torch.bincount(rows, minlength=h)[:, None] * torch.bincount(cols, minlength=w)[None, :]).to(grad)
        return (grad / count).index_select(2, rows).index_select(3, cols), None, None


class Pyramid(nn.Module):
    """A backbone's feature levels {name: (B, C_i, h_i, w_i)} -> one map (B, ΣC_i, H, W) at the
    largest level's (H, W), each level's cells repeated (nearest); :meth:`split` reads it back."""

    def forward(self, levels: dict) -> torch.Tensor:
        maps = list(levels.values())
        hh, ww = max(m.shape[2] for m in maps), max(m.shape[3] for m in maps)
        return torch.cat([m.index_select(2, _source(m.shape[2], hh, m.device))
                          .index_select(3, _source(m.shape[3], ww, m.device)) for m in maps], 1)

    @staticmethod
    def split(packed: torch.Tensor, levels: dict) -> OrderedDict:
        """The levels back from ``packed`` (laid out as ``levels``, the backbone's own output)."""
        out, start = OrderedDict(), 0
        for name, m in levels.items():
            part = packed[:, start:start + m.shape[1]]
            out[name] = _Shrink.apply(part, m.shape[2], m.shape[3])
            start += m.shape[1]
        return out


def _through_pyramid(module: nn.Module, args, output):
    """Forward hook of a detector's backbone: its levels pass through ``backbone.pyramid``."""
    if not isinstance(output, dict):
        return None
    return Pyramid.split(module.pyramid(output), output)


def add_pyramid(detector: nn.Module) -> nn.Module:
    """Give ``detector.backbone`` (levels as an OrderedDict) the ``pyramid`` layer, in place
    (synthviz's own detectors only: it adds no parameter or buffer, the state dict is the same)."""
    backbone = detector.backbone
    backbone.add_module("pyramid", Pyramid())
    backbone.register_forward_hook(_through_pyramid)
    return detector


def _with_pyramid_twin(net: nn.Module) -> nn.Module:
    """A twin of a user's detector that shares every submodule, parameter and buffer but has its
    own top module and backbone, which get the ``pyramid`` layer: the user's module is untouched."""
    twin, backbone = copy.copy(net), copy.copy(net.backbone)
    twin._modules = OrderedDict(net._modules)
    backbone._modules = OrderedDict(net.backbone._modules)
    for hooks in ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called"):
        if hasattr(backbone, hooks):
            setattr(backbone, hooks, OrderedDict(getattr(net.backbone, hooks)))
    twin._modules["backbone"] = backbone
    return add_pyramid(twin)


def detector_model(net: nn.Module, name: str, classes=None, owned: bool = True) -> Model:
    """A torchvision-style detector (its output a list of per-image dicts; it normalises and resizes
    inside) as a :class:`Model` with the ``backbone.pyramid`` CAM layer (a user's: on a twin)."""
    net = add_pyramid(net) if owned else _with_pyramid_twin(net)
    model = Model(net, None, None, classes, name=name, layers={"gradcam": PYRAMID, "mid": PYRAMID}, owned=owned)
    model.task = "detection"
    model._bytes_per_pixel = 0.0  # resized inside to its own size: the cost does not follow --size
    model.fuse = False  # the detector's own resizing and dict outputs: run the network itself
    return model


@register_wrapper("torchvision detection")
def _wrap_detector(net: nn.Module) -> Model | None:
    """A user's torchvision detector (Faster/Mask/Keypoint R-CNN, RetinaNet, FCOS, SSD) given as a
    module: recognised as a detector, its COCO names when it has COCO's 91 classes; left as it is."""
    if "torchvision.models.detection" not in sys.modules:
        return None
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.ssd import SSD

    if not isinstance(net, (FasterRCNN, RetinaNet, FCOS, SSD)) or not isinstance(getattr(net, "backbone", None), nn.Module):
        return None
    head = getattr(getattr(getattr(net, "roi_heads", None), "box_predictor", None), "cls_score", None)
    head = head or getattr(getattr(net, "head", None), "classification_head", None)  # RetinaNet, FCOS
    count = head.out_features if isinstance(head, nn.Linear) else getattr(head, "num_classes", None)
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights as coco

    classes = coco.DEFAULT.meta["categories"] if count == 91 else None
    return detector_model(net, type(net).__name__, classes, owned=False)


# --------------------------------------------------------------------------- loading

def _build(name: str, weights) -> nn.Module:
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    if weights == "default":
        try:
            return builder(weights=torchvision.models.get_model_weights(name).DEFAULT)
        except Exception as e:  # no network, proxy, corrupt cache...
            raise SynthvizError(f"could not download the weights of {name} ({type(e).__name__}); pass --weights PATH "
                                "to a local checkpoint, or --weights random") from None
    if weights == "random":
        with seeded_init():
            return builder(weights=None, weights_backbone=None)
    return from_checkpoint(lambda: builder(weights=None, weights_backbone=None), weights, name)


def _backbone_last(net: nn.Module) -> str:
    """A segmenter's last backbone stage (``backbone.layer4``, ``backbone.16``)."""
    last = list(net.backbone.named_children())[-1][0]
    return f"backbone.{last}"


def dense_model(name: str, weights: str | os.PathLike = "default") -> Model:
    """A torchvision detector or segmenter by name, with its preprocessing, classes and CAM layer."""
    import torchvision

    net = _build(name, weights)
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    if name in detection_names():
        return detector_model(net, name, meta["categories"])
    tf = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    layer = _backbone_last(net)
    model = Model(net, tf.mean or IMAGENET_MEAN, tf.std or IMAGENET_STD, meta["categories"], name=name,
                  layers={"gradcam": layer, "mid": layer})
    model.task = "segmentation"
    model.fuse = False  # dict outputs: run the network itself
    return model


def _loader(name: str):
    def load(weights: str | os.PathLike = "default") -> Model:
        return dense_model(name, weights)

    load.__name__ = load.__qualname__ = name
    load.__doc__ = f"torchvision's {name}: default (downloaded), random or a local checkpoint."
    return load


def register_all() -> list[str]:
    """Register every detection and segmentation name as a model (:mod:`synthviz.model_zoo` does,
    after the embedded default); returns the names."""
    names = detection_names() + segmentation_names()
    for name in names:
        register_model(name)(_loader(name))
    return names
