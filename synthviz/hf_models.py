"""Hugging Face ``transformers`` vision models: ``hf:FOLDER_OR_ID`` (``pip install 'synthviz[hf]'``).

A local ``save_pretrained`` folder or a hub id (downloaded by transformers): ViT, DeiT, BEiT,
DINOv2 (with registers), Swin, ConvNeXt, CLIP's and SigLIP's vision towers... Preprocessing comes
from the folder's image-processor config, class names from ``config.id2label``, the structured
output (``ModelOutput``) is reduced to one tensor (``logits``, else ``image_embeds``,
``pooler_output``, ``last_hidden_state``; ``output=`` names another field or a tuple position) and
layers keep the model's own ``named_modules()`` names. A whole CLIP or SigLIP model gives its
projected image embedding, and its text tower (with the folder's tokenizer) makes text targets::

    model = synthviz.load_model("hf:./my-vit", weights="random")
    model = synthviz.hf_models.hf_model("./my-dinov2", output="last_hidden_state")
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys

import torch
from torch import nn

from .checkpoints import from_checkpoint, reachable, seeded_init
from .errors import BadModel, SynthvizError
from .model_outputs import DEFAULT_OUTPUTS, Adopted, OutputField, pick_output
from .models import IMAGENET_MEAN, IMAGENET_STD, Model, register_source, register_wrapper

# Leading non-patch tokens per model type, when not 1 (+ the config's register tokens).
PREFIX_TOKENS = {"deit": 2, "siglip": 0, "siglip_vision_model": 0, "siglip2_vision_model": 0,
                 "swin": 0, "swinv2": 0, "donut-swin": 0, "levit": 0}
# Families that take any size with no flag (DINOv2 always interpolates its position embeddings, DINOv3: RoPE).
ANY_SIZE = ("dinov2", "dinov2_with_registers", "dinov3_vit")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise SynthvizError("transformers is not installed; pip install 'synthviz[hf]'") from None
    if int(transformers.__version__.split(".")[0]) < 5:  # set_attn_implementation, vit.layers names, ...
        raise SynthvizError(f"hf: models need transformers>=5, not {transformers.__version__}; pip install -U 'synthviz[hf]'")
    return transformers


class HFOutput(Adopted):
    """A transformers model that takes pixel values (B, 3, H, W) and returns one tensor of its
    structured output (:func:`pick_output`); the model is ``self.hf`` and its names are ours.
    A dual-tower model (CLIP, SigLIP: its forward needs text too) runs ``get_image_features``, and
    :meth:`embed_text` runs its text tower (with ``tokenizer``, read from the model's folder)."""

    INNER = "hf"

    def __init__(self, net: nn.Module, output: str | int | None = None, tokenizer=None):
        super().__init__(net)
        self.output = output
        self.dual = hasattr(net, "get_image_features") and hasattr(net, "get_text_features")
        run = net.get_image_features if self.dual else net.forward
        params = inspect.signature(run).parameters
        self.extra = {"interpolate_pos_encoding": True} if "interpolate_pos_encoding" in params else {}
        object.__setattr__(self, "tokenizer", tokenizer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        run = self.hf.get_image_features if self.dual else self.hf
        return pick_output(run(pixel_values=x, **self.extra), self.output)

    @torch.no_grad()
    def embed_text(self, prompts) -> torch.Tensor:
        """(P,) prompts -> (P, D) text embeddings: the tokenizer and the model's own text tower."""
        if not self.dual:
            raise BadModel(f"text targets need a model with a text tower (CLIP, SigLIP), not {type(self.hf).__name__}")
        if self.tokenizer is None:
            raise BadModel("this transformers model has no tokenizer for text targets; load it as hf:FOLDER_OR_ID "
                           "from a folder or hub id that has its tokenizer")
        kind = getattr(self.hf.config, "model_type", "")
        tokens = self.tokenizer(list(prompts), padding="max_length" if "siglip" in kind else True,
                                return_tensors="pt")
        device = next(self.hf.parameters()).device
        out = self.hf.get_text_features(**{k: v.to(device) for k, v in tokens.items()})
        return pick_output(out, "pooler_output" if not isinstance(out, torch.Tensor) else None).float()


def with_output(model: Model, output: str | int | None) -> Model:
    """``model`` reading the field ``output`` of its structured output (``logits``, ``pooler_output``,
    ``image_embeds``, ``last_hidden_state``, ``aux``, or a tuple position ``0``): a new
    :class:`Model` around the same network (same layers, nothing copied); None: ``model`` itself."""
    if output is None:
        return model
    output = int(output) if isinstance(output, str) and output.lstrip("-").isdigit() else output
    net = model.net
    if isinstance(net, HFOutput):
        wrapped = HFOutput(net.hf, output, net.tokenizer)
    else:
        wrapped = OutputField(net.inner if isinstance(net, OutputField) else net, output)
    picked = model.with_net(wrapped)
    if isinstance(net, HFOutput) and output != "logits":
        picked.classes = None  # class names belong to the logits
    with torch.no_grad():  # a field that is not there: one line now, not in the middle of a method
        picked(torch.zeros(1, 3, *(model.input_size or (max(model.min_size, 64),) * 2), device=model.device))
    return picked


def _architecture(transformers, config):
    """The model class the config was saved from (``ViTForImageClassification``), else AutoModel."""
    for arch in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, arch, None)
        if cls is not None:
            return cls
    return transformers.AutoModel


def hub_options(name: str) -> dict:
    """``from_pretrained`` options for ``name``: none for a folder or when the hub answers, else the
    cache only (``local_files_only``: one line at once instead of the hub's retries)."""
    if os.path.isdir(name):
        return {}
    import huggingface_hub

    where = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    online = not huggingface_hub.is_offline_mode() and reachable(where)
    return {} if online else {"local_files_only": True}


@contextlib.contextmanager
def _quiet(transformers):
    """transformers' "Loading weights" bar off for the duration (a command prints its own lines)."""
    logging = transformers.utils.logging
    shown = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            logging.enable_progress_bar()


def _build(transformers, name: str, weights, hub: dict) -> nn.Module:
    """The network of ``name`` (folder or hub id) with the given weights (``hub``: :func:`hub_options`)."""
    try:
        config = transformers.AutoConfig.from_pretrained(name, **hub)
        cls = _architecture(transformers, config)
        if weights == "default":
            with _quiet(transformers):
                return cls.from_pretrained(name, **hub)
    except (OSError, ValueError) as e:
        where = ("not a transformers model folder" if os.path.isdir(name) else
                 "no network and not in the Hugging Face cache" if hub else "not a hub model id")
        raise BadModel(f"could not load hf:{name} ({where}: {str(e).splitlines()[0][:120]}); give a local "
                       "save_pretrained folder, or a hub id with network") from None
    if weights == "random":
        with seeded_init():
            return cls._from_config(config) if hasattr(cls, "_from_config") else cls.from_config(config)
    return from_checkpoint(lambda: cls._from_config(config), weights, f"hf:{name}")


def _preprocessing(transformers, name: str, hub: dict) -> tuple:
    """(mean, std, (H, W) or None) from the image-processor config, ImageNet's when there is none."""
    try:
        proc = transformers.AutoImageProcessor.from_pretrained(name, **hub)
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
    if getattr(vision, "patch_size", None) is None or not hasattr(vision, "num_attention_heads"):
        return None  # no attention: a CNN (ConvNeXt's patch_size is its stem's stride)
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
                owned: bool = True, tokenizer=None) -> Model:
    """A built transformers vision model as a :class:`Model` (``preprocessing``: (mean, std, (H, W));
    ``tokenizer``: a dual-tower model's, for text targets)."""
    config = net.config
    mean, std, hw = preprocessing or (IMAGENET_MEAN, IMAGENET_STD, None)
    wrapped = HFOutput(net, output, tokenizer)
    labels = getattr(config, "id2label", None) or {}
    classifier = type(net).__name__.endswith("ForImageClassification") and output in (None, "logits")
    classes = [labels[i] for i in sorted(labels, key=int)] if classifier and labels else None
    prefix = prefix_tokens(config)
    vision = getattr(config, "vision_config", None) or config
    patch = (lambda p: p[0] if isinstance(p, (tuple, list)) else p)(getattr(vision, "patch_size", None))
    trained = hw or getattr(vision, "image_size", None)  # a token model that cannot interpolate: resized to it
    interpolates = bool(wrapped.extra) or getattr(vision, "model_type", "") in ANY_SIZE
    size = None if interpolates or prefix is None else trained  # interpolating: the grid follows the size
    layers = block_layers(wrapped) if prefix is not None else {}  # a CNN (ConvNeXt): the generic stage layers
    return Model(wrapped, mean, std, classes, name=name, min_size=patch or 32, input_size=size,
                 prefix_tokens=prefix, layers=layers, owned=owned)


@register_wrapper("transformers")
def _wrap_transformers(net: nn.Module) -> Model | None:
    """A user's transformers vision model given as a plain module: its config's facts, left as it is."""
    transformers = sys.modules.get("transformers")
    if transformers is None or not isinstance(net, transformers.PreTrainedModel) or "pixel_values" not in \
            inspect.signature(net.forward).parameters:
        return None
    return model_of_hf(net, type(net).__name__, owned=False)


@register_source("hf")
def hf_model(name: str, weights: str | os.PathLike = "default", output: str | int | None = None) -> Model:
    """A transformers vision model from a ``save_pretrained`` folder or a hub id: ``default``
    weights (the folder's, or downloaded), ``random`` (built from the config) or a local state dict."""
    transformers = _transformers()
    hub = hub_options(name)
    net = _build(transformers, name, weights, hub)
    return model_of_hf(net, f"hf:{name}", output, _preprocessing(transformers, name, hub),
                       tokenizer=_tokenizer(transformers, net, name, hub))


def _tokenizer(transformers, net: nn.Module, name: str, hub: dict):
    """A dual-tower model's tokenizer from its folder or hub id (None: vision-only, or none saved)."""
    if not hasattr(net, "get_text_features"):
        return None
    try:
        with _quiet(transformers):
            return transformers.AutoTokenizer.from_pretrained(name, **hub)
    except Exception:  # no tokenizer files: text targets say so when asked for
        return None


def _structured_output(model: Model, size: int):
    """(the network's own structured output on a blank image, the field it is reduced to or None)."""
    x = torch.zeros(1, 3, *(model.input_size or (size, size)), device=model.device)
    net = model.net
    with torch.no_grad(), model.evaluating():
        z = model.normalize(model.fit(x))
        if isinstance(net, HFOutput):
            return (net.hf.get_image_features if net.dual else net.hf)(pixel_values=z, **net.extra), net.output
        if isinstance(net, OutputField):
            return net.inner(z), net.output
        return net(z), None


def output_facts(model: Model, size: int = 224) -> str:
    """What ``model``'s output is and which part of it is explained, in one line
    (``logits (5,); fields: logits`` or ``a list of per-image dicts: boxes, labels, scores``)."""
    out, chosen = _structured_output(model, size)
    if isinstance(out, torch.Tensor):
        return f"one tensor {tuple(out.shape[1:])}"
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], dict):
        return f"a list of per-image dicts: {', '.join(out[0])} (targets: --box, --class, --min-score)"
    if isinstance(out, dict):
        fields = [k for k, v in out.items() if v is not None]
        name = chosen if chosen is not None else next((f for f in (*DEFAULT_OUTPUTS, "out") if f in fields), fields[0])
        picked = out[name] if not isinstance(name, int) else tuple(out.values())[name]
        shape = tuple(picked.shape[1:]) if isinstance(picked, torch.Tensor) else type(picked).__name__
        return f"{name} {shape}; fields: {', '.join(fields)} (--output picks another)"
    if isinstance(out, (list, tuple)):
        position = chosen if chosen is not None else 0
        return f"position {position} of a tuple of {len(out)} (--output picks another)"
    return type(out).__name__
