"""The SAE hyper-parameters live in one place (synthviz.concepts.hyper) and the tuned ones are options
of `learn`, `learn_concepts` and `synthviz concepts`: each reaches the loss it names (checked against
the formula computed here), is recorded in the run, and a bad value is a one-line error."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch

from synthviz.concepts import Dictionary, get_method, learn
from synthviz.concepts.hyper import SAE_DEFAULTS, TUNED, SAEHyper
from synthviz.concepts.train import train_sae
from synthviz.errors import BadValue


def test_the_options_defaults_are_the_one_place_s():
    from synthviz.cli.concepts import concepts_cmd
    from synthviz.techniques.concepts import learn_concepts

    for fn in (learn, learn_concepts, concepts_cmd):
        params = inspect.signature(fn).parameters
        for option, field in TUNED.items():
            assert params[option].default == getattr(SAE_DEFAULTS, field), (fn.__name__, option)


def test_penalty_weights_and_the_jumprelu_kernel_reach_the_loss():
    torch.manual_seed(0)
    x = torch.randn(64, 6)
    for l1 in (0.0, 0.3, 2.5):
        net = get_method("sae").fn(6, 5, None, None, hyper=SAEHyper(l1_weight=l1))
        pre, z = net.encode(x)
        error = (net.decode(z) - x).pow(2).sum(1).mean()
        torch.testing.assert_close(net.loss(x)[0], error + l1 * z.abs().sum(1).mean())
    # JumpReLU: the L0 term's weight, and the threshold's straight-through gradient -K((x - θ)/ε)/ε · l0
    for l0, width in ((1.0, 0.5), (3.0, 0.2)):
        net = get_method("jumprelu").fn(6, 5, None, None, hyper=SAEHyper(l0_weight=l0, jump_bandwidth=width))
        pre = torch.relu(net.encode(x)[0]).detach()
        theta = net.log_threshold.exp().detach()
        penalty = net.penalty(net.encode(x)[0], None)
        torch.testing.assert_close(penalty, l0 * (pre > theta).float().sum(1).mean())
        (grad,) = torch.autograd.grad(penalty, net.log_threshold)
        kernel = ((pre - theta).abs() < width / 2).float() / width
        torch.testing.assert_close(grad, l0 * (-kernel).sum(0) / len(x) * theta)  # d/d log θ = θ · d/dθ


def test_learn_records_the_values_and_they_change_the_training(tmp_path):
    from synthviz.evaluation.planted import planted_images
    from synthviz.io import save_image
    from synthviz.models import load_model
    from tests.tiny import TinyNet

    torch.manual_seed(0)
    model = load_model(TinyNet())
    for i, image in enumerate(planted_images(2, 32)[0]):
        save_image(image, tmp_path / "data" / f"{i}.png")
    common = dict(model=model, layer="relu3", method="sae", concepts=4, size=32, batch_size=4, epochs=3,
                  workers=0, progress=False, pages=False)
    plain = learn(tmp_path / "data", tmp_path / "plain", **common)
    sparse = learn(tmp_path / "data", tmp_path / "sparse", l1=20.0, **common)
    settings = json.loads((sparse / "manifest.json").read_text())["settings"]
    assert settings["sae"] == {"l1_weight": 20.0} and "sae" not in json.loads((plain / "manifest.json").read_text())["settings"]
    assert Dictionary.load(sparse / "dictionary.pt").facts["hyper"] == {"l1_weight": 20.0, "epochs": 3}
    l0 = [json.loads((run / "metrics.json").read_text())["l0"] for run in (plain, sparse)]
    assert l0[1] < l0[0]  # a heavier L1 penalty leaves fewer active codes
    with pytest.raises(BadValue, match="l1 must be"):
        learn(tmp_path / "data", tmp_path / "bad", l1=-1.0, **common)
    with pytest.raises(BadValue, match="delta must be positive"):
        learn(tmp_path / "data", tmp_path / "bad", delta=0.0, **common)


def test_train_sae_takes_the_learning_rate_and_epochs_from_hyper():
    data = np.random.default_rng(0).standard_normal((512, 6)).astype(np.float32)
    rows = np.arange(512)
    a, _, _ = train_sae(get_method("topk"), data, rows, 4, 2, batch_size=128, progress=False,
                        hyper=SAEHyper(learning_rate=1e-2, epochs=2))
    b, _, _ = train_sae(get_method("topk"), data, rows, 4, 2, batch_size=128, progress=False, lr=1e-2, epochs=2)
    c, _, _ = train_sae(get_method("topk"), data, rows, 4, 2, batch_size=128, progress=False, lr=1e-3, epochs=2)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.state_dict()["atoms"], c.state_dict()["atoms"])
