"""Models from other libraries: ``timm:NAME`` (``pip install synthviz[timm]``).

A timm model comes with its own preprocessing (the ``pretrained_cfg`` mean/std, also for a local
checkpoint of the same architecture), its fixed input size when its patch embedding insists on
one (ViT, DeiT), its class/distillation/register token count and, for Swin-like models, the
layers whose output is (B, H, W, C)::

    model = synthviz.load_model("timm:vit_small_patch16_224", weights="random")
"""

from __future__ import annotations

import os

from torch import nn

from .errors import SynthvizError
from .checkpoints import from_checkpoint, seeded_init
from .models import (IMAGENET_MEAN, IMAGENET_STD, Model, imagenet_classes,
                     register_source, register_wrapper)


def _timm():
    try:
        import timm
    except ImportError:
        raise SynthvizError("timm is not installed; pip install 'synthviz[timm]'") from None
    return timm


@register_source("timm")
def timm_model(name: str, weights: str | os.PathLike = "default") -> Model:
    """``timm.create_model(name)`` with ``default`` (downloaded), ``random`` or a local checkpoint."""
    timm = _timm()
    if name not in timm.list_models():
        raise SynthvizError(f"unknown timm model '{name}'; see timm.list_models() for the names")
    if weights == "default":
        try:
            net = timm.create_model(name, pretrained=True)
        except Exception as e:  # no network
            raise SynthvizError(f"could not download the weights of timm:{name} ({type(e).__name__}); "
                                "pass --weights PATH to a local checkpoint, or --weights random") from None
    elif weights == "random":
        with seeded_init():
            net = timm.create_model(name, pretrained=False)
    else:
        net = from_checkpoint(lambda: timm.create_model(name, pretrained=False), weights, f"timm:{name}")
    return model_of_timm(net, f"timm:{name}", owned=True)


def model_of_timm(net: nn.Module, name: str = "timm", owned: bool = False) -> Model:
    """Wrap an already built timm network with its own preprocessing and token facts (``owned``:
    synthviz built it, so it may be kept in eval mode; a user's module is left as it is)."""
    cfg = getattr(net, "pretrained_cfg", None) or {}
    classes = imagenet_classes() if getattr(net, "num_classes", 0) == 1000 else None
    embed = getattr(net, "patch_embed", None)
    fixed = embed is not None and getattr(embed, "strict_img_size", False)
    size = tuple(cfg.get("input_size", (3, 224, 224))[-2:]) if fixed or "maxvit" in name else None
    nhwc = getattr(embed, "output_fmt", None) is not None and str(embed.output_fmt).endswith("NHWC")
    layers = {}
    if hasattr(net, "blocks") and len(net.blocks):  # ViT family: the last block's first LayerNorm
        layers = {"gradcam": f"blocks.{len(net.blocks) - 1}.norm1", "mid": f"blocks.{len(net.blocks) // 2}"}
    return Model(net, cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD), classes, name=name,
                 input_size=size, prefix_tokens=getattr(net, "num_prefix_tokens", None), layers=layers,
                 channels_last=_timm_channels_last if nhwc else None, owned=owned)


@register_wrapper("timm")
def _wrap_timm(net: nn.Module) -> Model | None:
    """A timm network given as a plain module keeps its own preprocessing and token facts."""
    return model_of_timm(net, type(net).__name__) if hasattr(net, "pretrained_cfg") else None


def _timm_channels_last(layer: str) -> bool:
    """timm's NHWC models (Swin): everything after the patch embedding's convolution."""
    return layer.split(".")[0] in ("patch_embed", "layers", "stages", "norm") and not layer.endswith(".proj")
