"""Swin ((B, H, W, C) stages) and MaxViT (fixed size, its own blocks): views, CAM layers, Grad-CAM
against explicit autograd, feature visualization; the real swin_t / maxvit_t once each (random weights)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from clihelp import run
from tiny import tiny_maxvit, tiny_swin

import synthviz
from synthviz.layers import Tap, default_layer
from synthviz.models import load_model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread for these tests: on a shared 2-core machine two threads spin and run ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _raw_output(net, module, x, m, grad_of=None):
    """``module``'s raw output on ``x`` through ``net`` by a hook of this test's own, and optionally the
    gradient of ``grad_of(logits)`` with respect to it."""
    kept = {}
    hook = module.register_forward_hook(lambda mod, i, o: kept.setdefault("t", o))
    try:
        with torch.enable_grad():
            logits = net(m.normalize(x))
            grad = torch.autograd.grad(grad_of(logits), kept["t"])[0] if grad_of else None
    finally:
        hook.remove()
    return kept["t"].detach(), grad


def test_swin_stage_view_equals_a_manual_permute():
    net = tiny_swin()
    m = load_model(net)
    x = torch.rand(2, 3, 32, 32)
    raw, _ = _raw_output(net, net.features[3], x, m)
    assert raw.shape == (2, 4, 4, 16)  # Swin keeps (B, H, W, C)
    with torch.no_grad(), Tap(m, ["features.3", "features"]) as tap:
        acts = tap(x)
    assert torch.equal(acts["features.3"], raw.permute(0, 3, 1, 2))
    assert torch.equal(acts["features"], raw.permute(0, 3, 1, 2))  # the container is (B, H, W, C) too


def test_gradcam_on_a_swin_stage_equals_explicit_autograd_on_the_permuted_output():
    net = tiny_swin()
    m = load_model(net)
    x = torch.rand(2, 3, 32, 32)
    att = synthviz.attribute(m, x, "gradcam", target=[3, 7], layer="features.1")
    a, g = _raw_output(net, net.features[1], x, m, lambda out: out[0, 3] + out[1, 7])
    a, g = a.permute(0, 3, 1, 2), g.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W), by hand
    cam = (g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True)
    assert cam.abs().sum() > 0
    assert torch.allclose(att.raw, cam, atol=1e-5)
    assert torch.allclose(att.maps, F.interpolate(cam.clamp(min=0), size=(32, 32), mode="bilinear"), atol=1e-5)


def test_default_cam_layers_get_gradient_at_every_position():
    for net, layer in ((tiny_swin(), "features.3"), (tiny_maxvit(), "blocks.1")):
        m = load_model(net)
        x = torch.rand(1, 3, 32, 32)
        att = synthviz.attribute(m, x, "gradcam", target=2)
        assert att.info["layer"] == layer
        module = dict(net.named_modules())[layer]
        _, g = _raw_output(net, module, x, m, lambda out: out[0, 2])
        per_position = g.abs().sum(-1 if m.channels_last and m.channels_last(layer) else 1)
        assert (per_position > 0).all(), layer  # no position of the CAM layer is cut off from the head
    assert load_model(tiny_maxvit()).input_size == (32, 32)  # read from the built network


def test_probe_of_a_swin_stage_channel_raises_it():
    m = load_model(tiny_swin())

    def read(images):  # the channel's mean on the image itself, by an independent Tap
        with torch.no_grad(), Tap(m, ["features.3"]) as tap:
            return tap(images)["features.3"][:, 5].mean().item()

    start = synthviz.probe(m, "features.3", 5, size=32, steps=1, recipe="classic")
    end = synthviz.probe(m, "features.3", 5, size=32, steps=40, recipe="classic")
    assert end.images.shape == (1, 3, 32, 32) and end.info["units"] == [5]
    # a random tiny Swin at 32 px: small absolute values, so the rise is asked for in proportion
    assert read(end.images) > 1.3 * read(start.images) > 0, (read(start.images), read(end.images))


def test_real_swin_t_and_maxvit_t_layers_and_default_gradcam():
    res = run("layers", "swin_t", "--weights", "random")
    assert res.exit_code == 0, res.output
    lines = {ln.split()[0]: ln for ln in res.output.splitlines() if ln.strip()}
    for stage, shape in (("features.1", "(56, 56, 96)"), ("features.3", "(28, 28, 192)"),
                         ("features.5", "(14, 14, 384)"), ("features.7", "(7, 7, 768)")):
        assert f"{shape} (H, W, C)" in lines[stage], lines[stage]
    for name, size, layer in (("swin_t", 224, "features.7"), ("maxvit_t", 160, "blocks.3")):
        m = load_model(name, weights="random")
        x = torch.rand(1, 3, size, size)
        assert default_layer(m, "gradcam") == layer
        maps = synthviz.saliency(m, x, method="gradcam")
        assert maps.shape == (1, 1, size, size) and torch.isfinite(maps).all(), name
        assert maps.max() > maps.min(), name  # not a constant map
