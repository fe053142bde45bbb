"""Forward-only methods pick their batch from the network's largest activation (page faults on the
CPU, see synthviz/attribution/batching.py); the batch never changes the numbers."""

from __future__ import annotations

import pytest
import torch

from synthviz.attribution import attribute
from synthviz.attribution.batching import MAX_BATCH, HEAP_BYTES, forward_batch
from synthviz.cost import largest_activation


@pytest.mark.parametrize("side", [32, 256, 512, 1024])
def test_largest_activation_is_the_widest_module_output(tiny, side):
    x = torch.rand(2, 3, side, side)
    # TinyNet's widest output is conv1's: 8 channels at full resolution, float32
    assert largest_activation(tiny, x) == 8 * side * side * 4
    expected = max(1, min(MAX_BATCH, HEAP_BYTES // (8 * side * side * 4)))
    assert forward_batch(tiny, x, None) == expected
    assert forward_batch(tiny, x, 7) == 7
    assert not any(m._forward_hooks for m in tiny.net.modules())  # the measuring hooks are gone


def test_embedded_model_batch_at_224(embedded):
    # EfficientNet-Lite0's widest output: block 1's 96-channel expansion at 112 x 112, padded to
    # 113 x 113 (TF "same" padding) before its stride-2 depthwise conv
    x = torch.rand(1, 3, 224, 224)
    assert largest_activation(embedded, x) == 96 * 113 * 113 * 4
    assert forward_batch(embedded, x, None) == HEAP_BYTES // (96 * 113 * 113 * 4) == 3


def test_scorecam_is_the_same_at_any_batch(tiny):
    x = torch.rand(2, 3, 48, 48)
    auto = attribute(tiny, x, "scorecam", [1, 4], layer="conv2")
    for b in (1, 5, 16):
        other = attribute(tiny, x, "scorecam", [1, 4], layer="conv2", batch_size=b)
        torch.testing.assert_close(other.raw, auto.raw, rtol=1e-5, atol=1e-6)
