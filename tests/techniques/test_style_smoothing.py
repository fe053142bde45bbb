"""SWAG's feature smoothing (issue 30): the softmax transformation equals its formula and is
taken per image; ``texture``/``style`` with ``smooth="softmax"`` optimise the statistics of the
transformed features (checked against an independent computation of the loss they report)."""

import math

import pytest
import torch

from tiny import make_tiny_model
from synthviz.errors import SynthvizError
from synthviz.layers import capture
from synthviz.objectives import gram
from synthviz.painting import SoftmaxFeatures, feature_transform, softmax_features


def test_softmax_equals_its_formula_per_image():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 2, 2) * 2
    for t in (1.0, 3.0):
        out = softmax_features(x, t)
        for b in range(2):
            values = [float(v) for v in x[b].flatten()]
            total = sum(math.exp(v / t) for v in values)
            expected = [len(values) * math.exp(v / t) / total for v in values]  # C·H·W · softmax, over C·H·W
            assert out[b].flatten().tolist() == pytest.approx(expected, rel=1e-5)
    # per image, never over the batch: changing image 1 leaves image 0's output as it was
    y = x.clone()
    y[1] += torch.randn_like(y[1]) * 5
    torch.testing.assert_close(softmax_features(y)[0], softmax_features(x)[0])
    assert torch.allclose(softmax_features(x).mean((1, 2, 3)), torch.ones(2))
    torch.testing.assert_close(SoftmaxFeatures(3.0)(x), softmax_features(x, 3.0))


def test_options_are_checked():
    assert feature_transform("none") is None
    with pytest.raises(SynthvizError, match="softmax"):
        feature_transform("softmaks")
    with pytest.raises(SynthvizError, match="temperature"):
        feature_transform("softmax", 0.0)


def test_texture_with_softmax_reports_the_loss_of_the_smoothed_statistics(skimage_image):
    import synthviz
    from synthviz.io import resize

    m = make_tiny_model()
    example = resize(skimage_image("coffee"), 96)
    r = synthviz.texture(m, example, size=48, steps=3, scales=1, smooth="softmax", temperature=2.0)
    layers = r.info["layers"]
    out, ex = capture(m, r.images, layers), capture(m, example, layers)
    errors = []
    for layer in layers:
        g, g0 = gram(softmax_features(out[layer], 2.0)), gram(softmax_features(ex[layer], 2.0))
        errors.append(float((g - g0).pow(2).sum() / g0.pow(2).sum()))
    assert r.info["smooth"] == "softmax"
    assert r.info["style_loss"] == pytest.approx(sum(errors) / len(errors), rel=1e-3)
    plain = synthviz.texture(m, example, size=48, steps=3, scales=1)
    assert plain.info["style_loss"] != pytest.approx(r.info["style_loss"], rel=1e-2)


def test_style_with_softmax_runs_and_says_so(skimage_image):
    import synthviz
    from synthviz.io import resize

    m = make_tiny_model()
    r = synthviz.style(m, skimage_image("chelsea"), resize(skimage_image("coffee"), 96), size=48, steps=3, scales=1,
                       smooth="softmax", temperature=4.0)
    assert r.info["smooth"] == "softmax, temperature 4" and r.images.shape[-1] == 48
    assert r.info["style_loss"] < r.info["style_loss_start"]


def test_style_with_softmax_on_a_vit_reads_its_token_layers_spatial_view(skimage_image):
    import synthviz
    from synthviz.io import resize
    from tiny import tiny_vit

    m = synthviz.load_model(tiny_vit())  # random weights: mechanics only
    r = synthviz.style(m, skimage_image("chelsea"), resize(skimage_image("coffee"), 96), size=64, steps=3, scales=1,
                       smooth="softmax", temperature=2.0)
    assert r.info["style_loss"] < r.info["style_loss_start"] and r.images.shape[-1] == 64
