"""Gradient × coefficient against a known answer, and token layers as samples.

TinyNet's logits are a linear head on the mean over positions of `relu3`, so a concept's gradient ×
coefficient, summed over concepts, must equal the head applied to the dictionary's reconstruction
of the activations (less the head's bias): computed here with the head itself, independently."""

from __future__ import annotations

import torch

import synthviz
from synthviz.concepts import Dictionary
from synthviz.concepts.nmf import fit_nmf
from synthviz.concepts.pictures import maps_and_importance
from synthviz.concepts.stream import positions
from synthviz.layers import capture
from tests.tiny import TinyNet, tiny_vit


def test_gradient_times_coefficient_adds_up_to_the_heads_reading_of_the_reconstruction():
    torch.manual_seed(0)
    model = synthviz.load_model(TinyNet())
    images = torch.rand(6, 3, 32, 32)
    with torch.no_grad():
        act = capture(model, images, ["relu3"])["relu3"]  # (6, 16, 8, 8), non-negative: plain NMF
    x = positions(act).reshape(-1, 16)
    atoms, facts = fit_nmf(x, 4)
    assert not facts["semi"]
    d = Dictionary("nmf", "relu3", "tiny", atoms, torch.zeros(16))
    maps, share, classes = maps_and_importance(model, d, images)
    assert maps.shape == (6, 4, 8, 8)
    rebuilt = d.decode(d.encode(x)).reshape(6, -1, 16).mean(1)  # (6, 16): what the pooling hands the head
    fc = model.net.fc
    expected = (rebuilt @ fc.weight.T)[torch.arange(6), classes]
    torch.testing.assert_close(share.sum(1), expected.detach(), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(classes, model(images).argmax(1))  # the predicted class by default


def test_every_patch_token_of_a_vit_layer_is_a_sample():
    model = synthviz.load_model(tiny_vit())
    layer = "encoder.layers.encoder_layer_1"
    images = torch.rand(3, 3, 32, 32)
    from synthviz.concepts.learn import layer_samples

    assert layer_samples(model, layer, 32) == (16, 16)  # a 4 x 4 grid of patches, the class token left out
    with torch.no_grad():
        raw = capture(model, images, [layer])[layer]
    x = positions(raw).reshape(-1, 16)
    atoms, facts = fit_nmf(x, 3)
    assert facts["semi"]  # a transformer block's output is signed
    d = Dictionary("nmf", layer, "tiny_vit", atoms, torch.zeros(16))
    maps, share, _ = maps_and_importance(model, d, images)
    assert maps.shape == (3, 3, 4, 4) and share.shape == (3, 3)
