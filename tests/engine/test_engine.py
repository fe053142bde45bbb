"""The engine: real class visualization, hooks, truncation, batching, NaN, Ctrl-C, seeds."""

from __future__ import annotations

import warnings

import pytest
import torch

import synthviz
from synthviz import objectives as obj
from synthviz.callbacks import StopWhen
from synthviz.engine import RenderInterrupted, render
from synthviz.objectives import Objective
from synthviz.params import FourierImage, PixelImage
from synthviz.transforms import standard_transforms


def _hook_count(net: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in net.modules())


def test_classviz_reaches_class_285_on_the_embedded_model(embedded):
    start = FourierImage(1, 128, 128)
    with torch.no_grad():
        p0 = embedded(start.image()).softmax(-1)[0, 285].item()
    assert p0 < 0.01
    result = synthviz.classviz(target=285, model=embedded, size=128, steps=48, seed=0)
    with torch.no_grad():
        p = embedded(result.images).softmax(-1)[0, 285].item()
    assert p >= 0.9, p
    assert result.info["probability"][0] == pytest.approx(p, abs=1e-4)
    assert result.history[-1].item() > result.history[0].item()


def test_classic_recipe_raises_the_class_score(embedded):
    result = synthviz.classviz(target="Egyptian cat", model=embedded, recipe="classic", size=96, steps=30)
    assert result.info["cls"] == 285
    assert result.history[-1].item() > result.history[0].item() + 5


def test_hooks_are_gone_after_render_and_after_an_error(tiny):
    before = _hook_count(tiny.net)
    render(tiny, obj.channel("relu2", 0) + obj.class_score(1), lambda: PixelImage(1, 32), steps=3)
    assert _hook_count(tiny.net) == before == 0

    def boom(ctx):
        raise ValueError("boom")

    with pytest.raises(ValueError):
        render(tiny, Objective(boom, "boom", ["relu2"]), lambda: PixelImage(1, 32), steps=3)
    assert _hook_count(tiny.net) == 0


def test_model_is_frozen_during_and_restored_after(tiny):
    tiny.net.train()
    tiny.net.conv1.weight.requires_grad_(True)
    render(tiny, obj.channel("relu3", 0), lambda: PixelImage(1, 32), steps=3)
    assert all(p.grad is None for p in tiny.net.parameters())  # no weight gradient was ever computed
    assert tiny.net.training and tiny.net.conv1.weight.requires_grad  # left exactly as it was


def test_early_layer_objective_does_not_run_later_layers(tiny):
    calls = {name: 0 for name, _ in tiny.net.named_modules() if name}
    handles = [m.register_forward_pre_hook(lambda m, i, n=n: calls.__setitem__(n, calls[n] + 1))
               for n, m in tiny.net.named_modules() if n]
    try:
        render(tiny, obj.channel("relu1", 0), lambda: PixelImage(1, 32), steps=4)
    finally:
        for h in handles:
            h.remove()
    assert calls["conv1"] == calls["relu1"] == 4
    assert calls["conv2"] == calls["conv3"] == calls["fc"] == 0


def test_early_layer_on_the_embedded_model_skips_the_rest(embedded):
    ran = []
    handle = embedded.net._fc.register_forward_pre_hook(lambda *a: ran.append(1))
    try:
        render(embedded, obj.channel("_blocks.1", 0), lambda: PixelImage(1, 64), steps=2)
    finally:
        handle.remove()
    assert not ran


def test_batched_render_of_four_channels(embedded):
    channels = [0, 5, 9, 17]
    result = synthviz.probe(layer="_blocks.3", units=channels, model=embedded, size=64, steps=40, seed=0)
    images = result.images
    assert images.shape == (4, 3, 64, 64)
    for i in range(4):
        for j in range(i + 1, 4):
            assert (images[i] - images[j]).abs().mean() > 0.02
    with torch.no_grad():
        acts = synthviz.capture(embedded, images, ["_blocks.3"])["_blocks.3"]
    own = acts[:, channels].mean((2, 3))  # (image, channel)
    for i in range(4):  # image i is the best of the four for its own channel
        assert own[i, i] == own[:, i].max(), own
    assert result.picture().shape[0] == 3


def test_seed_makes_a_render_reproducible(tiny):
    def go(seed):
        return render(tiny, obj.channel("relu2", 1), lambda: FourierImage(1, 32), transforms=standard_transforms(),
                      steps=5, seed=seed).images

    torch.testing.assert_close(go(3), go(3))
    assert not torch.equal(go(3), go(4))


def test_nan_keeps_the_last_good_image(tiny):
    def fn(ctx):
        fn.calls += 1
        value = ctx["relu2"][:, 0].mean((1, 2))
        return value * float("nan") if fn.calls > 3 else value

    fn.calls = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = render(tiny, Objective(fn, "bad", ["relu2"]), lambda: PixelImage(1, 32), steps=10)
    assert result.stopped == "nan" and result.steps == 3
    assert torch.isfinite(result.images).all()
    assert any("NaN" in str(w.message) for w in caught)


def test_ctrl_c_returns_the_image_as_it_stands(tiny):
    def interrupt(info):
        if info.step == 4:
            raise KeyboardInterrupt

    with pytest.raises(RenderInterrupted) as stop:
        render(tiny, obj.channel("relu2", 0), lambda: PixelImage(1, 32), steps=50, callbacks=[interrupt])
    result = stop.value.result
    assert result.images.shape == (1, 3, 32, 32) and torch.isfinite(result.images).all()
    assert len(result.history) == 5
    assert _hook_count(tiny.net) == 0


def test_early_stop_snapshots_and_frames(tiny):
    result = render(tiny, obj.channel("relu2", 0), lambda: PixelImage(1, 32), steps=30, snapshots=[0, 2],
                    frame_every=2, callbacks=[StopWhen(lambda info: info.step == 5)])
    assert result.stopped == "early" and result.steps == 6
    assert set(result.snapshots) == {0, 2}
    assert len(result.frames) == 4  # steps 0, 2, 4 and the final image


def test_lbfgs_and_schedule(tiny):
    result = render(tiny, obj.channel("relu2", 0), lambda: PixelImage(1, 32), optimizer="lbfgs", lr=1, steps=5)
    assert result.history[-1].item() > result.history[0].item()
    result = render(tiny, obj.channel("relu2", 0), lambda: PixelImage(1, 32), steps=5,
                    schedule=lambda step: 0.5 ** step)
    assert result.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5 ** 5)


def test_tiled_gradient_equals_the_whole_one(tiny):
    def grad(tile):
        p = PixelImage(1, 48, init=torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0)))
        render(tiny, obj.layer_amplify("relu1"), p, optimizer="sgd", lr=0.0, steps=1, tile=tile)
        return p.pixels.grad

    # relu1 is pointwise after a 3x3 conv: tiles differ from the whole only on their borders; each
    # tile's mean is over 1/9 of the positions, so its gradient is 9x the whole image's
    whole, tiled = grad(None), grad(16)
    inner = torch.ones_like(whole, dtype=torch.bool)
    for k in (14, 15, 16, 17, 30, 31, 32, 33):  # within two pixels of a tile border
        inner[..., k, :] = False
        inner[..., :, k] = False
    torch.testing.assert_close(tiled[inner], whole[inner] * 9, rtol=1e-4, atol=1e-6)


def test_render_gives_the_model_back_on_the_device_it_was_found(tiny, monkeypatch):
    """render(device=...) moves the model for the render only (engine.on_device), and device=None
    never moves it."""
    from synthviz.engine import on_device

    class Fake:  # records where it is sent
        device = torch.device("cpu")
        moves: list = []

        def to(self, device):
            self.moves.append(str(device))
            self.device = torch.device(device)
            return self

    fake = Fake()
    with on_device(fake, torch.device("meta")):
        assert fake.device.type == "meta"
    assert fake.moves == ["meta", "cpu"] and fake.device.type == "cpu"
    with pytest.raises(KeyError), on_device(fake, torch.device("meta")):
        raise KeyError  # also after an error
    assert fake.device.type == "cpu"

    calls = []
    monkeypatch.setattr(type(tiny), "to", lambda self, d: calls.append(d) or self)
    render(tiny, obj.channel("relu2", 0), lambda: PixelImage(1, 32), steps=2)
    render(tiny, obj.channel("relu2", 0), lambda: PixelImage(1, 32), steps=2, device="cpu")
    assert calls == []  # already there: never moved


def test_a_render_chooses_its_network_once_and_on_the_fused_twin(embedded, monkeypatch):
    """The network to run (Model.runner: a walk over every module and tensor, ~1 ms a step on the
    embedded model) is chosen on the first step of a render, not at every step; the render is
    the same, bit for bit, as one that re-checks it every step (a Tap without ``steady``)."""
    from synthviz import layers
    from synthviz.models import Model

    calls = []
    real = Model.runner
    monkeypatch.setattr(Model, "runner", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    objective = obj.channel("_blocks.1", 3)

    def go():
        return render(embedded, objective, lambda: FourierImage(1, 64), transforms=standard_transforms(),
                      steps=5, seed=2)

    fast = go()
    assert len(calls) == 1
    real_tap = layers.Tap.__init__
    monkeypatch.setattr(layers.Tap, "__init__", lambda self, *a, steady=False, **k: real_tap(self, *a, **k))
    calls.clear()
    slow = go()
    assert len(calls) == 5
    assert torch.equal(fast.images, slow.images) and torch.equal(fast.history, slow.history)
