"""How many images the forward-only methods (Score-CAM, occlusion, RISE, LIME, KernelSHAP) run at once.

On the CPU a bigger batch is not faster here: glibc hands every block over its mmap threshold
(at most 32 MiB) out as fresh pages, and touching them costs a page fault each. At batch 16 the
embedded model's largest activation (16 × 96 × 113 × 113 floats, 78 MB) takes that road on every
forward: in a fresh process 7 700 page faults per image against 3 500 at batch 3, whose forwards
run about 1.3x faster (``python benchmarks/batching.py`` prints both; the README quotes it).
So the default is the most images whose largest activation stays well under the threshold.
"""

from __future__ import annotations

import torch

from ..checks import positive
from ..cost import largest_activation
from ..models import Model

HEAP_BYTES = 16 * 2**20  # well under glibc's largest mmap threshold (32 MiB): the heap stays untrimmed
MAX_BATCH = 16  # the old fixed default: a GPU's batch, and the most the CPU rule picks


def forward_batch(model: Model, x: torch.Tensor, batch_size: int | None) -> int:
    """``batch_size`` when given; else on the CPU the most images (1..16) whose largest activation
    (:func:`synthviz.cost.largest_activation`) fits :data:`HEAP_BYTES`, on a GPU 16."""
    if batch_size is not None:
        return int(positive("batch_size", batch_size, integer=True))
    if x.device.type != "cpu":
        return MAX_BATCH
    return max(1, min(MAX_BATCH, HEAP_BYTES // largest_activation(model, x)))
