"""RelMax reference images in the indexing pass (``synthviz index ... --relevance CLASS``).

ActMax ranks a unit's images by how strongly it fires; RelMax (Achtibat et al., *From attribution
maps to human-understandable explanations through Concept Relevance Propagation*, Nature Machine
Intelligence 2023; zennit-crp's ``RelMax`` in ``FeatureVisualization``) ranks them by how much of
the class's evidence the unit carries: the LRP relevance of the class score at the unit, computed
with synthviz's CRP (:func:`synthviz.attribution.crp.layer_relevance`). Per image and unit the value
is the relevance summed over the layer's positions, divided by the image's total absolute relevance
at the layer (zennit-crp's ``max_target="sum"``, ``abs_norm=True``), and the position is where the
unit's relevance is largest. A unit that fires on an image whose class score it does not feed has
relevance 0 there: ActMax lists the image, RelMax does not.

The pass keeps them as one more "layer" of its state per indexed layer (``<layer>#relevance``:
:class:`~synthviz.dataset.stats.UnitStats` in ``state.npz``, per-image values in
``features/<layer>#relevance.npy``), so checkpoints and resume need nothing new, and writes
``relmax.csv`` (the columns of ``topk.csv``) beside ``topk.csv``. On Ray the index's workers
(:class:`~synthviz.dataset.distributed.BatchForward`) call :func:`relevance_batch` in the same pass.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import atomic_write
from .outputs import EXAMPLE_COLUMNS, _example_rows
from .sources import Source

SUFFIX = "#relevance"


def relevance_key(layer: str) -> str:
    """The name the pass keeps ``layer``'s relevance statistics under."""
    return layer + SUFFIX


def reduce_relevance(rel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relevance at a layer (B, C, h, w) -> (values (B, C): each unit's relevance summed over positions
    over the image's total absolute relevance, positions (B, C): ``y * w + x`` of each unit's largest)."""
    flat = rel.flatten(2).float()
    summed = flat.sum(2)
    values = summed / (summed.abs().sum(1, keepdim=True) + 1e-10)
    return values.cpu(), flat.argmax(2).cpu()


def relevance_batch(model, images: torch.Tensor, layers: list[str], target: int) -> dict:
    """One batch (B, 3, S, S): {``<layer>#relevance``: (values (B, C), positions (B, C))} for class ``target``."""
    from ..attribution.crp import layer_relevance

    targets = torch.full((len(images),), int(target), dtype=torch.long)
    with model.evaluating():
        rels = layer_relevance(model, images.to(model.device), targets, layers)
    return {relevance_key(name): reduce_relevance(rel) for name, rel in rels.items()}


def write_relmax(out: Path, source: Source, stats: dict, layers: dict) -> None:
    """``relmax.csv``: ``layer,unit,rank,path,value,x,y`` of each unit's top images by relevance."""
    from ..io import csv_text

    chosen = {name: stats[relevance_key(name)] for name in layers}
    atomic_write(out / "relmax.csv", csv_text(EXAMPLE_COLUMNS, _example_rows(source, chosen, layers, "top")))
