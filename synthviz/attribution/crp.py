"""Concept relevance propagation (CRP, Achtibat et al., *From attribution maps to human-understandable
explanations through Concept Relevance Propagation*, Nature Machine Intelligence 2023).

LRP with synthviz's composites (:mod:`.lrp`), conditioned on concepts at a layer: relevance runs
from the target score down to ``layer``, is kept only for the chosen concepts there, and runs on
from the layer alone to the pixels (zennit-crp's ``CondAttribution`` with ``exclude_parallel``:
skip connections that bypass the layer carry nothing). The heatmap shows where in the image the
chosen concepts get the relevance they pass on to the class.

Concepts are the layer's channels (``concepts=3,7``: both at once; none: each image's most relevant
channel), or the directions of a dictionary learnt by ``synthviz concepts`` (``run=RUN``: its
``dictionary.pt``): the activation at each position is split among the dictionary's concepts as
A ≈ Σ_k u_k d_k (their codes u_k times their atoms d_k), and the relevance of each activation goes
to concept k in proportion to its share u_k d_k / A (the z-rule of that virtual linear layer).

The layer is hooked on its output; a convolution whose batch norm follows it is read before the
batch norm, which then keeps its plain gradient instead of being merged: pick the block or
activation after it (``synthviz layers``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import SynthvizError, did_you_mean
from ..layers import LOGITS, Tap, parse_units
from ..models import Model
from .core import REDUCTIONS, Attribution, check_layer_name, check_spatial, target_scores
from .lrp import COMPOSITES, LRPMode, stabilize
from .registry import register_method


def _as_is(t: torch.Tensor) -> torch.Tensor:
    return t


def _raw_network(model: Model) -> Model:
    """The model's own network (never the fused twin) taking inputs already normalised, so the LRP
    mode sees the very input tensor it was given bounds for."""
    raw = Model(model.net, preprocess=_as_is, name=model.name, min_size=model.min_size, owned=False,
                prefix_tokens=model.prefix_tokens, channels_last=model.channels_last, classes=model.classes)
    raw.fuse = False
    return raw


def _load_dictionary(run, layer: str | None):
    from ..concepts.dictionary import Dictionary

    path = Path(run)
    path = path / "dictionary.pt" if path.is_dir() else path
    if not path.is_file():
        raise SynthvizError(f"no dictionary at {path}; pass run=RUN made by `synthviz concepts`")
    d = Dictionary.load(path)
    if layer is not None and layer != d.layer:
        raise SynthvizError(f"the dictionary in {run} is of layer {d.layer}, not {layer}; drop layer= or use {d.layer}")
    return d


def _channel_mask(rel: torch.Tensor, concepts) -> tuple[torch.Tensor, list]:
    """(mask (B, C, 1, 1), the channels per image): the chosen channels, or each image's most relevant."""
    b, c = rel.shape[:2]
    if concepts is None:
        top = rel.flatten(2).sum(2).argmax(1)
        return torch.nn.functional.one_hot(top, c).to(rel.dtype)[:, :, None, None], [[int(t)] for t in top]
    chosen = parse_units(concepts, c)
    mask = torch.zeros(1, c, 1, 1, dtype=rel.dtype, device=rel.device)
    mask[:, chosen] = 1
    return mask.expand(b, -1, -1, -1), [list(chosen)] * b


def _dictionary_relevance(rel: torch.Tensor, act: torch.Tensor, d, concepts, eps: float) -> tuple[torch.Tensor, list]:
    """Relevance at the layer (B, C, h, w) kept for dictionary concepts: each activation's relevance
    times the chosen concepts' share u_k d_k / A of it (the z-rule of the virtual layer A = Σ u_k d_k)."""
    b, c, h, w = act.shape
    if d.atoms.shape[1] != c:
        raise SynthvizError(f"the dictionary has {d.atoms.shape[1]} channels, the layer {c}; was it learnt on this model?")
    flat = act.detach().permute(0, 2, 3, 1).reshape(-1, c)
    codes = d.encode(flat.to(d.atoms.device)).to(act.dtype)  # (B·h·w, K)
    if concepts is None:  # each image's most relevant concept
        share_all = codes[:, :, None] * d.atoms.to(act.dtype)[None] * d.scale  # (B·h·w, K, C)
        per = (share_all * (rel.permute(0, 2, 3, 1).reshape(-1, 1, c) / stabilize(flat, eps)[:, None])).sum(2)
        top = per.view(b, h * w, -1).sum(1).argmax(1)
        chosen_per = [[int(t)] for t in top]
    else:
        chosen = parse_units(concepts, d.atoms.shape[0])
        chosen_per = [list(chosen)] * b
    keep = torch.zeros(b, 1, d.atoms.shape[0], dtype=act.dtype, device=act.device)
    for i, ks in enumerate(chosen_per):
        keep[i, 0, ks] = 1
    part = (codes.view(b, h * w, -1) * keep) @ d.atoms.to(act.dtype) * d.scale  # (B, h·w, C)
    part = part.view(b, h, w, c).permute(0, 3, 1, 2)
    return rel * part / stabilize(act.detach(), eps), chosen_per


def _lrp_forward(model: Model, x: torch.Tensor, targets, layers: list[str], composite: str, epsilon: float,
                 gamma: float):
    """The LRP-mode forward CRP starts from: (the normalised input leaf, {layer: its (B, C, h, w) map
    in the graph}, the target scores (B,), the rules' stabiliser). Gradients of the scores (weighted
    by the scores) through this graph are LRP relevances."""
    if composite not in COMPOSITES:
        raise SynthvizError(f"unknown LRP composite '{composite}'{did_you_mean(composite, COMPOSITES)}; "
                            f"use {', '.join(COMPOSITES)}")
    leaf = model.normalize(x).detach().requires_grad_(True)
    low, high = model.normalize(torch.zeros_like(x[:1])), model.normalize(torch.ones_like(x[:1]))
    with torch.enable_grad(), LRPMode(composite, leaf, low, high, epsilon=epsilon, gamma=gamma) as mode, \
            Tap(_raw_network(model), [*layers, LOGITS], grad="through") as tap:
        acts = tap(leaf)
        scores = target_scores(acts[LOGITS], targets)
    return leaf, {name: check_spatial(model, name, acts[name]) for name in layers}, scores, mode.stabilizer


def layer_relevance(model: Model, x: torch.Tensor, targets, layers: list[str], *,
                    composite: str = "epsilon_gamma_box", epsilon: float = 1e-6,
                    gamma: float = 0.25) -> dict[str, torch.Tensor]:
    """The relevance CRP conditions on: LRP (``composite`` etc. as for ``crp``) from the target score
    of each image (B, 3, H, W) down to each of ``layers``, {layer: (B, C, h, w)}, detached; channel
    ``c`` summed over positions is the relevance of unit ``c`` for the target (zennit-crp's
    ``CondAttribution(...).relevances`` with ``record_layer``: what its ``RelMax`` ranks images by)."""
    _, acts, scores, _ = _lrp_forward(model, x, targets, list(layers), composite, epsilon, gamma)
    rels = torch.autograd.grad(scores, [acts[name] for name in layers], scores.detach())
    return {name: r.detach() for name, r in zip(layers, rels)}


@register_method("crp", label="CRP", family="lrp", aliases=("concept_relevance",), needs_layer=True, in_all=False,
                 cost="1 forward + 1 backward to the layer + 1 backward from it, each layer running its LRP rule's terms")
def crp(model: Model, x: torch.Tensor, targets, layer: str | None = None, concepts=None,
        composite: str = "epsilon_gamma_box", epsilon: float = 1e-6, gamma: float = 0.25, run=None) -> Attribution:
    """Concept-conditional LRP: (B, 1, H, W) relevance per pixel of the chosen ``concepts`` at ``layer``
    (signed, summed over colour); raw (B, 3, H, W).

    ``concepts``: channels (``3``, ``"3,7"``, ``"0-7"``, a list), all of them together; None: each
    image's most relevant one. ``run``: a ``synthviz concepts`` run (or its ``dictionary.pt``): its
    concepts instead of channels (its layer unless ``layer`` is given). ``composite``, ``epsilon``,
    ``gamma``: as for ``lrp``. ``info``: the concepts, the layer, the target score, the relevance at
    the layer in total and kept for the concepts, per image.
    """
    dictionary = _load_dictionary(run, layer) if run is not None else None
    layer = dictionary.layer if dictionary is not None else check_layer_name(model, layer)
    leaf, acts, scores, stabilizer = _lrp_forward(model, x, targets, [layer], composite, epsilon, gamma)
    act = acts[layer]
    (rel,) = torch.autograd.grad(scores, act, scores.detach(), retain_graph=True)
    if dictionary is not None:
        kept, chosen = _dictionary_relevance(rel, act, dictionary, concepts, stabilizer)
    else:
        mask, chosen = _channel_mask(rel, concepts)
        kept = rel * mask
    (raw,) = torch.autograd.grad(act, leaf, kept)
    raw = raw.detach()
    info = {"layer": layer, "concepts": chosen, "composite": composite, "score": scores.detach().tolist(),
            "layer_relevance": rel.flatten(1).sum(1).tolist(), "concept_relevance": kept.flatten(1).sum(1).tolist(),
            "relevance_sum": raw.flatten(1).sum(1).tolist(), "dictionary": str(run) if run is not None else None}
    return Attribution(REDUCTIONS["sum"](raw), raw, info=info, reduction="sum")
