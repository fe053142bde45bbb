"""OpenCLIP models: ``open_clip:ARCH[:PRETRAINED]`` (``pip install 'synthviz[clip]'``).

The image tower (``encode_image``) is the model, with open_clip's own preprocessing; the text tower
makes targets (:func:`synthviz.targets.text`: cosine similarity with a prompt's embedding)::

    model = synthviz.load_model("open_clip:ViT-B-32:openai")
    target = synthviz.targets.text(model, "a photo of a cat")
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from .checkpoints import load_checkpoint, seeded_init
from .errors import BadModel, SynthvizError, did_you_mean
from .hf_models import block_layers
from .models import Model, register_source


def _open_clip():
    try:
        import open_clip
    except ImportError:
        raise SynthvizError("open_clip is not installed; pip install 'synthviz[clip]'") from None
    return open_clip


class ClipImageTower(nn.Module):
    """A CLIP model's image tower, (B, 3, H, W) normalised -> (B, D) image embeddings; its only
    submodule is ``visual`` (layers: ``visual.transformer.resblocks.11.ln_1``). :meth:`embed_text`
    runs the text tower, which is not a submodule (never hooked, frozen, moved)."""

    def __init__(self, clip: nn.Module, tokenizer):
        super().__init__()
        self.visual = clip.visual
        object.__setattr__(self, "clip", clip)
        object.__setattr__(self, "tokenizer", tokenizer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_image(x)

    @torch.no_grad()
    def embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """(P,) prompts -> (P, D) text embeddings (open_clip's tokenizer and text tower, no gradient)."""
        device = self.clip.token_embedding.weight.device
        return self.clip.encode_text(self.tokenizer(list(prompts)).to(device)).float()


def _pretrained_tag(open_clip, arch: str, tag: str | None) -> str:
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag is None and not tags:
        raise BadModel(f"open_clip:{arch} has no pretrained weights; use --weights random or --weights PATH")
    return tag or tags[0]


def _build(open_clip, arch: str, tag: str | None, weights) -> nn.Module:
    """The whole CLIP model of ``arch``: open_clip's pretrained ``tag``, random or a local state dict."""
    if weights != "default":  # random, or a local state dict (open_clip builds on a real device: no meta build)
        with seeded_init():
            clip = open_clip.create_model(arch, pretrained=None)
        if weights != "random":
            load_checkpoint(clip, weights, f"open_clip:{arch}")
        return clip
    tag = _pretrained_tag(open_clip, arch, tag)
    try:
        return open_clip.create_model(arch, pretrained=tag)
    except Exception as e:  # no network, an unknown tag, a corrupt cache...
        raise BadModel(f"could not load the open_clip:{arch}:{tag} weights ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''}); use --weights random or --weights PATH") from None


@register_source("open_clip")
def clip_model(name: str, weights: str | os.PathLike = "default") -> Model:
    """``open_clip:ARCH[:PRETRAINED]``: the image tower of open_clip's ARCH with its preprocessing."""
    open_clip = _open_clip()
    arch, _, tag = name.partition(":")
    if arch not in open_clip.list_models():
        raise BadModel(f"unknown open_clip model '{arch}'{did_you_mean(arch, open_clip.list_models())}; "
                       "see open_clip.list_models()")
    clip = _build(open_clip, arch, tag or None, weights)
    cfg = open_clip.get_model_preprocess_cfg(clip)
    net = ClipImageTower(clip, open_clip.get_tokenizer(arch))
    size = getattr(clip.visual, "image_size", None)
    tokens = hasattr(clip.visual, "class_embedding")  # open_clip's VisionTransformer: one class token
    return Model(net, cfg.get("mean"), cfg.get("std"), None, name=f"open_clip:{name}", input_size=size,
                 prefix_tokens=1 if tokens else None, layers=block_layers(net) if tokens else {})
