"""Objectives: each improves under the engine on a small model; the algebra composes."""

from __future__ import annotations

import pytest
import torch

from synthviz import objectives as obj
from synthviz import regularizers as reg
from synthviz.engine import render
from synthviz.layers import capture
from synthviz.objectives import Context, Objective, gram
from synthviz.params import PixelImage


def _target_image(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 32, 32, generator=g)


def _objectives(tiny):
    target = _target_image()
    acts = capture(tiny, target, ["relu2", "conv3"])
    return {
        "channel": obj.channel("relu2", 3),
        "neuron": obj.neuron("conv3", 5),
        "neuron_xy": obj.neuron("conv3", 5, x=1, y=2),
        "fc_channel": obj.channel("fc", 2),
        "class_logit": obj.class_score(4),
        "class_logprob": obj.class_score(4, kind="logprob"),
        "layer_amplify": obj.layer_amplify("relu2"),
        "layer_amplify_channel": obj.layer_amplify("relu2", channel=1),
        "feature_match": obj.feature_match("relu2", acts["relu2"]),
        "gram_match": obj.gram_match("conv3", gram(acts["conv3"])),
        "direction": obj.direction("conv3", torch.randn(16, generator=torch.Generator().manual_seed(2))),
        "direction_cos": obj.direction("conv3", torch.ones(16), cossim_pow=1.0),
        "diversity": obj.diversity("relu2"),
        "l2": reg.l2(1.0),
        "tv": reg.total_variation(1.0, beta=2.0),
        "alpha": reg.alpha_norm(1.0, alpha=6.0),
    }


@pytest.mark.parametrize("name", [
    "channel", "neuron", "neuron_xy", "fc_channel", "class_logit", "class_logprob", "layer_amplify",
    "layer_amplify_channel", "feature_match", "gram_match", "direction", "direction_cos", "diversity",
    "l2", "tv", "alpha"])
def test_every_objective_improves(tiny, name):
    objective = _objectives(tiny)[name]
    batch = 3 if name == "diversity" else 1
    result = render(tiny, objective, lambda: PixelImage(batch, 32, sd=0.2), optimizer="adam", lr=0.02,
                    steps=25, seed=0)
    first, last = result.history[0].sum().item(), result.history[-1].sum().item()
    assert last > first + 1e-6, f"{objective.name}: {first} -> {last}"


def _ctx(tiny, batch=2):
    image = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return Context(image, capture(tiny, image, ["relu2", "conv3", "logits"]))


def test_algebra_composes(tiny):
    ctx = _ctx(tiny)
    a, b = obj.channel("relu2", 1), obj.neuron("conv3", 2)
    va, vb = a(ctx), b(ctx)
    assert va.shape == (2,)
    torch.testing.assert_close((a + b)(ctx), va + vb)
    torch.testing.assert_close((a - b)(ctx), va - vb)
    torch.testing.assert_close((0.5 * a)(ctx), 0.5 * va)
    torch.testing.assert_close((a * 2)(ctx), 2 * va)
    torch.testing.assert_close((a / 4)(ctx), va / 4)
    torch.testing.assert_close((-a)(ctx), -va)
    torch.testing.assert_close(sum([a, b, a])(ctx), 2 * va + vb)
    torch.testing.assert_close((1 - a)(ctx), 1 - va)
    combo = a + 0.5 * b - obj.class_score(3)
    assert combo.name == "channel(relu2:1) + 0.5 * neuron(conv3:2@x=None,y=None) - logit(3)"
    assert set(combo.layers) == {"relu2", "conv3", "logits"}


def test_batch_targeting_scores_one_element(tiny):
    ctx = _ctx(tiny, batch=3)
    full = obj.channel("relu2", 1)(ctx)
    one = obj.channel("relu2", 1, batch=2)(ctx)
    assert one[0] == 0 and one[1] == 0 and one[2] == full[2]


def test_custom_objective_is_a_few_lines(tiny):
    peak = Objective(lambda c: c["relu2"][:, 3].amax(dim=(1, 2)), "max(relu2:3)", ["relu2"])
    result = render(tiny, peak, lambda: PixelImage(1, 32), lr=0.05, steps=15)
    assert result.history[-1].item() > result.history[0].item()
    assert result.objective == "max(relu2:3)"


def test_gram_is_size_independent():
    x = torch.rand(1, 4, 8, 8)
    tiled = x.repeat(1, 1, 2, 2)  # same statistics, 4x the positions
    torch.testing.assert_close(gram(x), gram(tiled))


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (2, 3, 20, 28)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_penalties_shapes_and_dtypes(shape, dtype):
    x = torch.rand(*shape, dtype=dtype)
    for fn in (reg.l2_norm, reg.tv_norm, reg.alpha_norm_of):
        v = fn(x)
        assert v.shape == (shape[0],) and v.dtype == dtype and (v >= 0).all()
    flat = torch.full(shape, 0.5, dtype=dtype)
    assert reg.tv_norm(flat).max() < 1e-3 and reg.l2_norm(flat).max() == 0
