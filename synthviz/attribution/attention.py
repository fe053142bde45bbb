"""Attention weights of a vision transformer, even when it runs fused attention kernels.

torchvision's encoder calls ``MultiheadAttention(..., need_weights=False)`` and timm calls
``F.scaled_dot_product_attention``: nothing outside sees the weights. Inside
:func:`recording_attention`:

* each ``nn.MultiheadAttention`` (self-attention, ``batch_first``) gets a forward hook that records
  ``softmax(q kᵀ / √d)`` from the module's own q, k projections and, when gradients are on,
  replaces its output by ``out_proj(softmax(q kᵀ / √d) v)``: the weights recorded are then the ones
  the rest of the network uses, so gradients with respect to them are exact;
* each timm ``Attention`` (an attribute ``fused_attn``) runs its explicit branch for the duration
  (``fused_attn = False``) and its ``attn_drop`` output (the weights multiplied with v) is recorded;
* a Hugging Face ``transformers`` model (5.x runs SDPA, whose ``output_attentions`` returns
  nothing) runs eager attention for the duration (``set_attn_implementation("eager")``), and the
  weights its attention modules return (the modules and output position the model itself
  declares in ``_can_record_outputs["attentions"]``) are recorded; every config's
  ``_attn_implementation`` is put back as it was.

Everything is restored in a ``finally``: hooks removed, ``fused_attn`` and the transformers
attention implementation as they were. The rollout
arithmetic (:func:`rollout_of`, :func:`chefer_of`) works on lists of (B, heads, N, N) weights.

These hooks are not :class:`~synthviz.layers.Tap` captures: they recompute (and, with gradients
on, replace) a block's attention from its own projections, so they live here, beside their only
user, the transformer attribution methods (:mod:`synthviz.attribution.transformer`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SynthvizError


class AttentionRecord(list):
    """The attention weights of one forward pass, block by block: each (B, heads, N, N)."""


def _mha_hook(record: AttentionRecord):
    def hook(module: nn.MultiheadAttention, args, kwargs, output):
        q_in = args[0] if args else kwargs["query"]
        k_in = args[1] if len(args) > 1 else kwargs.get("key", q_in)
        v_in = args[2] if len(args) > 2 else kwargs.get("value", q_in)
        masks = [kwargs.get("attn_mask"), kwargs.get("key_padding_mask")] + list(args[3:5])
        if not (q_in is k_in is v_in) or not module.batch_first or not module._qkv_same_embed_dim \
                or any(m is not None for m in masks) or module.bias_k is not None:
            raise SynthvizError("attention capture supports batch-first self-attention without masks "
                                "(torchvision's ViT); this MultiheadAttention is used otherwise")
        b, n, e = q_in.shape
        h = module.num_heads
        q, k, v = F.linear(q_in, module.in_proj_weight, module.in_proj_bias).chunk(3, -1)
        q, k, v = (t.reshape(b, n, h, e // h).transpose(1, 2) for t in (q, k, v))
        attn = (q @ k.transpose(-2, -1) / math.sqrt(e // h)).softmax(-1)
        record.append(attn)
        if not torch.is_grad_enabled():  # no gradient wanted: the module's own (fused) output stands
            return None
        out = (attn @ v).transpose(1, 2).reshape(b, n, e)
        out = module.out_proj(out)
        weights = output[1] if isinstance(output, tuple) else None
        return (out, weights)

    return hook


def _timm_attention(module: nn.Module) -> bool:
    return hasattr(module, "fused_attn") and isinstance(getattr(module, "attn_drop", None), nn.Module)


def _hf_models(net: nn.Module) -> list[nn.Module]:
    """The transformers models in ``net`` (a :class:`~synthviz.hf_models.HFOutput` keeps its model
    outside its modules, as ``net.hf``): duck-typed, transformers is never imported here."""
    found, seen = [], set()
    for m in [net.__dict__.get("hf"), *net.modules()]:
        if m is not None and id(m) not in seen and hasattr(m, "set_attn_implementation") and hasattr(m, "config"):
            seen.add(id(m))
            found.append(m)
        elif hasattr(m, "main_input_name") and hasattr(m, "config") and \
                type(m).__module__.startswith("transformers."):  # a model of an older transformers
            raise SynthvizError("the attention weights of a transformers model are read through its "
                                "set_attn_implementation, which this transformers lacks; pip install -U "
                                "'transformers>=5' (synthviz[hf])")
    return found


def _configs(models: list[nn.Module]) -> list:
    """Every config of ``models`` and their sub-configs (each once)."""
    out, seen, stack = [], set(), [m.config for m in models]
    while stack:
        cfg = stack.pop()
        if cfg is None or id(cfg) in seen:
            continue
        seen.add(id(cfg))
        out.append(cfg)
        stack += [getattr(cfg, key, None) for key in getattr(cfg, "sub_configs", {}) or {}]
    return out


def _hf_attention_modules(model: nn.Module) -> list[tuple[nn.Module, int]]:
    """(module, output position of its attention weights) as ``model`` declares them in
    ``_can_record_outputs["attentions"]`` (a class, a class-name suffix or an ``OutputRecorder``)."""
    specs = (getattr(model, "_can_record_outputs", None) or {}).get("attentions")
    specs = specs if isinstance(specs, (list, tuple)) else [specs] if specs is not None else []
    found = []
    for spec in specs:
        cls = getattr(spec, "target_class", spec if isinstance(spec, type) else None)
        suffix = getattr(spec, "class_name", spec if isinstance(spec, str) else None)
        layer, index = getattr(spec, "layer_name", None), getattr(spec, "index", 1)
        for name, module in model.named_modules():
            if (cls is not None and isinstance(module, cls)) or (suffix is not None and name.endswith(suffix)):
                if layer is None or f".{layer.strip('.')}." in f".{name}.":
                    found.append((module, index))
    return found


@contextlib.contextmanager
def hf_eager_attention(net: nn.Module) -> Iterator[list[tuple[nn.Module, int]]]:
    """The transformers models in ``net`` run eager attention for the duration (their attention
    weights are then returned by their attention modules); yields those (module, position) pairs.
    Every config's attention implementation is restored exactly afterwards."""
    models = _hf_models(net)
    configs = _configs(models)
    saved = [(cfg, cfg.__dict__.get("_attn_implementation_internal")) for cfg in configs]
    try:
        for model in models:
            if getattr(model.config, "_attn_implementation", "eager") != "eager":
                model.set_attn_implementation("eager")
        pairs, seen = [], set()
        for model in models:
            for module, index in _hf_attention_modules(model):
                if id(module) not in seen:
                    seen.add(id(module))
                    pairs.append((module, index))
        yield pairs
    finally:
        for cfg, value in saved:
            cfg._attn_implementation_internal = value


def _hf_hook(record: AttentionRecord, index: int):
    def hook(module, args, output):
        if isinstance(output, (tuple, list)) and len(output) > index and output[index] is not None:
            record.append(output[index])

    return hook


@contextlib.contextmanager
def recording_attention(net: nn.Module) -> Iterator[AttentionRecord]:
    """Record every self-attention block's weights during the forward passes run inside.

    Yields an :class:`AttentionRecord` (a list, cleared by the caller between passes) that fills with
    one (B, heads, N, N) tensor per block, in execution order, attached to the graph when gradients
    are enabled. The network is restored exactly on exit (hooks and ``fused_attn`` flags)."""
    record = AttentionRecord()
    handles, flags = [], []
    with contextlib.ExitStack() as stack:
        for module, index in stack.enter_context(hf_eager_attention(net)):
            handles.append(module.register_forward_hook(_hf_hook(record, index)))
        with _recording(net, record, handles, flags):
            yield record


@contextlib.contextmanager
def _recording(net: nn.Module, record: AttentionRecord, handles: list, flags: list) -> Iterator[None]:
    """The torchvision and timm captures (see :func:`recording_attention`); hooks in ``handles``
    and ``fused_attn`` flags in ``flags`` are removed and restored on exit."""
    try:
        for module in net.modules():
            if isinstance(module, nn.MultiheadAttention):
                handles.append(module.register_forward_hook(_mha_hook(record), with_kwargs=True))
            elif _timm_attention(module):
                flags.append((module, module.fused_attn))
                module.fused_attn = False
                handles.append(module.attn_drop.register_forward_hook(lambda m, i, o: record.append(o)))
        if not handles:
            raise SynthvizError(f"{type(net).__name__} has no self-attention blocks synthviz can read "
                                "(torchvision MultiheadAttention, timm Attention or a transformers model's "
                                "attention); use a ViT or DeiT")
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in flags:
            module.fused_attn = flag


def fuse_heads(attn: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """(B, heads, N, N) -> (B, N, N) by the ``mean``, ``max`` or ``min`` over heads."""
    if how == "mean":
        return attn.mean(1)
    if how == "max":
        return attn.amax(1)
    if how == "min":
        return attn.amin(1)
    raise SynthvizError(f"unknown head fusion '{how}'; use mean, max or min")


def rollout_of(attentions: list[torch.Tensor], head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) as in vit-explain: per block fuse the heads, set the
    lowest ``discard_ratio`` of the weights of each image to 0 (never the class token's own weight
    [0, 0]), Â = (A + I) / 2 with rows renormalised, and R = Â_L ··· Â_1. Returns R (B, N, N)."""
    if not 0 <= discard_ratio < 1:
        raise SynthvizError(f"discard ratio must be in [0, 1), not {discard_ratio}")
    b, _, n, _ = attentions[0].shape
    eye = torch.eye(n, device=attentions[0].device, dtype=attentions[0].dtype)
    result = eye.expand(b, n, n)
    for attn in attentions:
        fused = fuse_heads(attn, head_fusion)
        drop = int(n * n * discard_ratio)
        if drop:
            flat = fused.reshape(b, -1).clone()
            low = flat.topk(drop, -1, largest=False).indices
            keep = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, low, True)
            keep[:, 0] = False  # vit-explain keeps the class token's attention to itself
            fused = flat.masked_fill(keep, 0).reshape(b, n, n)
        a = (fused + eye) / 2
        a = a / a.sum(-1, keepdim=True)
        result = a @ result
    return result


def chefer_of(attentions: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """Chefer et al. (ICCV 2021): R = I; for each block Ā = mean over heads of (∇A ⊙ A)⁺ and
    R ← R + Ā R. Returns R (B, N, N)."""
    b, _, n, _ = attentions[0].shape
    r = torch.eye(n, device=attentions[0].device, dtype=attentions[0].dtype).expand(b, n, n)
    for attn, grad in zip(attentions, grads):
        a_bar = (grad * attn).clamp(min=0).mean(1)
        r = r + a_bar @ r
    return r


def class_token_map(relevance: torch.Tensor, input_hw: tuple[int, int], prefix: int | None) -> torch.Tensor:
    """The class token's row of a relevance matrix (B, N, N) over the patch tokens, as (B, 1, h, w).
    A model without a class token (prefix 0) gets the mean of the rows."""
    from ..tokens import token_grid

    b, n, _ = relevance.shape
    grid = token_grid(n, input_hw, prefix)
    if grid is None:
        raise SynthvizError(f"cannot lay {n} tokens on a grid for a {input_hw[0]}x{input_hw[1]} input")
    row = relevance[:, 0] if grid.prefix else relevance.mean(1)
    return row[:, grid.prefix:].reshape(b, 1, grid.h, grid.w)
