"""Gradient × coefficient against a known answer, and token layers as samples.

TinyNet's logits are a linear head on the mean over positions of `relu3`, so a concept's gradient ×
coefficient, summed over concepts, must equal the head applied to the dictionary's reconstruction
of the activations (less the head's bias): computed here with the head itself, independently."""

from __future__ import annotations

import json

import pytest

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


def test_sobol_total_indices_are_the_variance_shares_of_a_linear_head(tmp_path):
    """CRAFT's importance: the class score is linear in the mask m (fc of the mean over positions of
    (U ⊙ m) · W), so concept k's total index is a_k² / Σ a_j², a_k = mean_pos(u_k) · <w_k, fc row>,
    computed here by hand; the head's row is made orthogonal to atom 0, whose index must be ≈ 0."""
    from synthviz.concepts.sobol import sobol_step

    torch.manual_seed(0)
    model = synthviz.load_model(TinyNet())
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        act = capture(model, images, ["relu3"])["relu3"]
    atoms, _ = fit_nmf(positions(act).reshape(-1, 16), 4)
    d = Dictionary("nmf", "relu3", "tiny", atoms, torch.zeros(16))
    fc = model.net.fc
    with torch.no_grad():
        row = fc.weight[2]
        fc.weight[2] = row - (row @ atoms[0]) / (atoms[0] @ atoms[0]) * atoms[0]
        z, total, classes, grid = sobol_step(model, d, images, target=2, designs=64)
        contribution = z.mean(1) * (atoms @ fc.weight[2])[None]  # (3, 4): a_k per image
    expected = contribution ** 2 / (contribution ** 2).sum(1, keepdim=True)
    assert grid == (8, 8) and torch.equal(classes, torch.full((3,), 2))
    assert total.shape == (3, 4) and float(total[:, 0].abs().max()) < 1e-6
    torch.testing.assert_close(total, expected, rtol=0, atol=0.02)
    assert torch.equal(total.argsort(1), expected.argsort(1))  # the same ranking of concepts

    # the option through a run: importance.csv keeps its columns, metrics.json names the importance
    from synthviz.concepts import learn, read_importance
    from synthviz.io import save_image

    for i, image in enumerate(images):
        save_image(image, tmp_path / "data" / f"{i}.png")
    run = learn(tmp_path / "data", tmp_path / "run", model=model, layer="relu3", concepts=3, size=32, batch_size=2,
                workers=0, progress=False, pages=False, importance="sobol")
    assert json.loads((run / "metrics.json").read_text())["importance"] == "sobol total index"
    assert (run / "importance.csv").read_text().splitlines()[0] == "class,concept,importance"
    values = torch.tensor([v for row in read_importance(run).values() for v in row])
    assert len(values) and bool(((values > -1e-6) & (values < 1.5)).all())


def test_concept_map_importance_follows_the_method_sobol_for_nmf_gradient_for_saes(tmp_path):
    """The rule of issue 28: CRAFT's Sobol indices for an NMF dictionary, gradient × coefficient for
    an SAE, ``importance=`` overriding it. TinyNet's class score is linear in the concept masks, so
    the known answers are a_k = scale · mean_pos(u_k) · <w_k, fc row> (gradient × coefficient) and
    a_k² / Σ a_j² (total Sobol index), computed here from the head itself."""
    from synthviz.concepts import concept_map, learn
    from synthviz.errors import BadValue
    from synthviz.io import save_image

    torch.manual_seed(0)
    model = synthviz.load_model(TinyNet())
    images = torch.rand(6, 3, 32, 32)
    for i, image in enumerate(images):
        save_image(image, tmp_path / "data" / f"{i}.png")
    photo = synthviz.load_image(tmp_path / "data" / "0.png")  # (1, 3, 32, 32): the run's own size, no resize
    common = dict(model=model, layer="relu3", concepts=3, size=32, batch_size=3, workers=0, progress=False,
                  pages=False)
    for method, default in (("nmf", "sobol"), ("topk", "gradient")):
        run = learn(tmp_path / "data", tmp_path / method, method=method, k=2, epochs=2, **common)
        d = Dictionary.load(run / "dictionary.pt")
        with torch.no_grad():
            act = capture(model, photo, ["relu3"])["relu3"]
            u = d.encode(positions(act).reshape(-1, 16))  # (64, K)
            found = concept_map(run, photo, model=model, target=2, importance="gradient")
            a = d.scale * u.mean(0) * (d.atoms @ model.net.fc.weight[2])  # (K,)
        torch.testing.assert_close(found["importance"], a, rtol=1e-3, atol=1e-5)
        sobol = concept_map(run, photo, model=model, target=2, importance="sobol")
        share = a ** 2 / (a ** 2).sum()  # (32 quasi-random designs: the estimate is within ~20 %)
        torch.testing.assert_close(sobol["importance"], share, rtol=0.2, atol=0.01)
        assert torch.equal(sobol["importance"].argsort(), share.argsort())
        torch.testing.assert_close(sobol["maps"], found["maps"])  # the same coefficients either way
        chosen = concept_map(run, photo, model=model, target=2)  # the rule
        assert chosen["importance_kind"] == default, method
        torch.testing.assert_close(chosen["importance"], (sobol if default == "sobol" else found)["importance"])
    with pytest.raises(BadValue, match="importance"):
        concept_map(run, photo, model=model, importance="shap")
