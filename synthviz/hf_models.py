"""Hugging Face ``transformers`` vision models: ``hf:FOLDER_OR_ID`` (``pip install 'synthviz[hf]'``).

A local ``save_pretrained`` folder or a hub id (downloaded by transformers): ViT, DeiT, BEiT,
DINOv2 (with registers), Swin, ConvNeXt, CLIP's and SigLIP's vision towers... Preprocessing comes
from the folder's image-processor config, class names from ``config.id2label``, the structured
output (``ModelOutput``) is reduced to one tensor (``logits``, else ``image_embeds``,
``pooler_output``, ``last_hidden_state``; ``output=`` names another field or a tuple position) and
layers keep the model's own ``named_modules()`` names::

    model = synthviz.load_model("hf:./my-vit", weights="random")
    model = synthviz.hf_models.hf_model("./my-dinov2", output="last_hidden_state")
"""

from __future__ import annotations

import inspect
import os

import torch
from torch import nn

from .checkpoints import from_checkpoint, seeded_init
from .errors import BadModel, BadValue, SynthvizError
from .models import IMAGENET_MEAN, IMAGENET_STD, Model, register_source

# The fields a structured output is reduced to when ``output`` is not given, first present wins.
DEFAULT_OUTPUTS = ("logits", "image_embeds", "pooler_output", "last_hidden_state")
# Leading non-patch tokens per model type, when not 1 (+ the config's register tokens).
PREFIX_TOKENS = {"deit": 2, "siglip": 0, "siglip_vision_model": 0, "siglip2_vision_model": 0,
                 "swin": 0, "swinv2": 0, "donut-swin": 0}


def _transformers():
    try:
        import transformers
    except ImportError:
        raise SynthvizError("transformers is not installed; pip install 'synthviz[hf]'") from None
    return transformers


def pick_output(out, output: str | int | None = None) -> torch.Tensor:
    """One tensor of a model's output: a tensor as is; a ``ModelOutput``/dict field named ``output``
    (default: the first of :data:`DEFAULT_OUTPUTS` present); a tuple/list position ``output``."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(output, int) or (isinstance(output, str) and output.lstrip("-").isdigit()):
        seq = out.to_tuple() if hasattr(out, "to_tuple") else out
        if not isinstance(seq, (tuple, list)) or not -len(seq) <= int(output) < len(seq):
            raise BadValue(f"output position {output} does not exist; the output has {len(seq)} elements")
        return seq[int(output)]
    if isinstance(out, dict):
        fields = [k for k, v in out.items() if v is not None]
        name = output if output is not None else next((f for f in DEFAULT_OUTPUTS if f in fields), None)
        if name not in fields:
            raise BadValue(f"the model's output has no field {name!r}; use output= one of: {', '.join(fields)}")
        return out[name]
    if isinstance(out, (tuple, list)) and output is None:
        return out[0]
    raise BadValue(f"cannot read a tensor from an output of type {type(out).__name__}; pass output=")


class HFOutput(nn.Module):
    """A transformers model that takes pixel values (B, 3, H, W) and returns one tensor of its
    structured output (:func:`pick_output`). Its submodules are the model's own children, so
    ``named_modules()`` keeps the model's names (``vit.layers.1.layernorm_before``)."""

    def __init__(self, net: nn.Module, output: str | int | None = None):
        super().__init__()
        object.__setattr__(self, "hf", net)  # not a submodule: its children are ours
        for name, child in net.named_children():
            self.add_module(name, child)
        for name, p in net.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, b in net.named_buffers(recurse=False):
            self.register_buffer(name, b)
        self.output = output
        params = inspect.signature(net.forward).parameters
        self.extra = {"interpolate_pos_encoding": True} if "interpolate_pos_encoding" in params else {}

    def train(self, mode: bool = True) -> "HFOutput":
        super().train(mode)
        self.hf.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pick_output(self.hf(pixel_values=x, **self.extra), self.output)


def _architecture(transformers, config):
    """The model class the config was saved from (``ViTForImageClassification``), else AutoModel."""
    for arch in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, arch, None)
        if cls is not None:
            return cls
    return transformers.AutoModel


def _build(transformers, name: str, weights) -> nn.Module:
    """The network of ``name`` (folder or hub id) with the given weights."""
    try:
        config = transformers.AutoConfig.from_pretrained(name)
        cls = _architecture(transformers, config)
        if weights == "default":
            return cls.from_pretrained(name)
    except (OSError, ValueError) as e:
        where = "folder" if os.path.isdir(name) else "hub id (no network, or not a model)"
        raise BadModel(f"could not load hf:{name}: {str(e).splitlines()[0]} ({where}); give a local "
                       "save_pretrained folder, or --weights random with its config") from None
    if weights == "random":
        with seeded_init():
            return cls._from_config(config) if hasattr(cls, "_from_config") else cls.from_config(config)
    return from_checkpoint(lambda: cls._from_config(config), weights, f"hf:{name}")


def _preprocessing(transformers, name: str) -> tuple:
    """(mean, std, (H, W) or None) from the image-processor config, ImageNet's when there is none."""
    try:
        proc = transformers.AutoImageProcessor.from_pretrained(name)
    except Exception:  # no preprocessor_config.json: not an error, the defaults apply
        return IMAGENET_MEAN, IMAGENET_STD, None
    mean, std = getattr(proc, "image_mean", None), getattr(proc, "image_std", None)
    if getattr(proc, "do_normalize", True) is False:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    size = getattr(proc, "crop_size", None) if getattr(proc, "do_center_crop", False) else None
    size = size or getattr(proc, "size", None)
    size = dict(size) if size is not None and not isinstance(size, int) else size
    hw = (size, size) if isinstance(size, int) else (
        (size["height"], size["width"]) if isinstance(size, dict) and "height" in size else None)
    return mean or IMAGENET_MEAN, std or IMAGENET_STD, hw


def prefix_tokens(config) -> int | None:
    """Class + distillation + register tokens before the patch tokens, from the config (None: the
    model has no token layers, e.g. ConvNeXt)."""
    vision = getattr(config, "vision_config", None) or config
    kind = getattr(vision, "model_type", "")
    if kind in PREFIX_TOKENS:
        return PREFIX_TOKENS[kind]
    if getattr(vision, "patch_size", None) is None:
        return None
    return 1 + int(getattr(vision, "num_register_tokens", 0) or 0)


def block_layers(net: nn.Module) -> dict:
    """``{"gradcam": the last block's first LayerNorm, "mid": the middle block}`` of the last list of
    transformer blocks (``vit.layers``, ``encoder.layer``, Swin's last stage), or {} (a CNN)."""
    blocks = None
    for name, mod in net.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) and any(
                isinstance(m, nn.LayerNorm) for m in mod[-1].modules()):
            blocks = name
    if blocks is None:
        return {}
    listed = net.get_submodule(blocks)
    norm = next(n for n, m in listed[-1].named_modules() if isinstance(m, nn.LayerNorm))
    return {"gradcam": f"{blocks}.{len(listed) - 1}.{norm}", "mid": f"{blocks}.{len(listed) // 2}"}


def model_of_hf(net: nn.Module, name: str = "hf", output: str | int | None = None, preprocessing=None,
                owned: bool = True) -> Model:
    """A built transformers vision model as a :class:`Model` (``preprocessing``: (mean, std, (H, W)))."""
    config = net.config
    mean, std, hw = preprocessing or (IMAGENET_MEAN, IMAGENET_STD, None)
    wrapped = HFOutput(net, output)
    labels = getattr(config, "id2label", None) or {}
    classes = [labels[i] for i in sorted(labels)] if labels and getattr(config, "num_labels", 0) == len(labels) \
        and "logits" in _field_names(net, output) else None
    patch = getattr(getattr(config, "vision_config", None) or config, "patch_size", None)
    patch = patch[0] if isinstance(patch, (tuple, list)) else patch
    size = None if wrapped.extra or prefix_tokens(config) is None else hw
    return Model(wrapped, mean, std, classes, name=name, min_size=max(32, patch or 0), input_size=size,
                 prefix_tokens=prefix_tokens(config), layers=block_layers(wrapped), owned=owned)


def _field_names(net: nn.Module, output) -> tuple:
    """The fields the reduced output may be: ``logits`` only when the model is a classifier."""
    if output is not None:
        return (output,)
    return ("logits",) if type(net).__name__.endswith("ForImageClassification") else ()


@register_source("hf")
def hf_model(name: str, weights: str | os.PathLike = "default", output: str | int | None = None) -> Model:
    """A transformers vision model from a ``save_pretrained`` folder or a hub id: ``default``
    weights (the folder's, or downloaded), ``random`` (built from the config) or a local state dict."""
    transformers = _transformers()
    net = _build(transformers, name, weights)
    return model_of_hf(net, f"hf:{name}", output, _preprocessing(transformers, name))
