"""Saliency methods, the comparison figure and the cascading-randomization sanity check."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

import synthviz
from synthviz.cli.app import app
from synthviz.errors import SynthvizError
from synthviz.io import resize, save_image
from synthviz.models import LITE_MEAN, LITE_STD, Model
from synthviz.attribution import attribute, method_info, method_names, option_defaults
from synthviz.attribution.guided import GuidedReLU
from synthviz.overlay import colormap
from synthviz.randomize import randomization_blocks
from synthviz.techniques.saliency_figure import saliency_figure


def plain(net: nn.Module, name: str = "toy", classes: int = 2) -> Model:
    """A Model with no normalisation, so analytic answers are in terms of the pixels themselves."""
    return Model(net, mean=(0, 0, 0), std=(1, 1, 1), classes=[f"c{i}" for i in range(classes)], name=name, min_size=4)


def model_state(model: Model) -> dict:
    """Everything guided backprop / Grad-CAM must leave as it was."""
    mods = list(model.net.modules())
    return {
        "training": [m.training for m in mods],
        "inplace": [getattr(m, "inplace", None) for m in mods],
        "requires_grad": [p.requires_grad for p in model.net.parameters()],
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                     + len(getattr(m, "_backward_pre_hooks", {})) for m in mods),
        "types": [type(m) for m in mods],
        "state": {k: v.clone() for k, v in model.net.state_dict().items()},
    }


def same_state(a: dict, b: dict) -> bool:
    return (all(a[k] == b[k] for k in ("training", "inplace", "requires_grad", "hooks", "types"))
            and a["state"].keys() == b["state"].keys()
            and all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"]))


@pytest.fixture(scope="module")
def pair(skimage_image):
    """Two real photos, (2, 3, 112, 112): chelsea (cat) and coffee."""
    return torch.cat([resize(skimage_image(n), (112, 112)) for n in ("chelsea", "coffee")])


# --------------------------------------------------------------------------- vanilla gradient & API

def test_vanilla_gradient_equals_independent_autograd(embedded, pair):
    x = pair.clone().requires_grad_(True)
    mean = torch.tensor(LITE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(LITE_STD).view(1, 3, 1, 1)
    logits = embedded.net((x - mean) / std)
    predicted = logits.argmax(1)
    logits[torch.arange(2), predicted].sum().backward()

    att = attribute(embedded, pair, "gradient")  # default target: the prediction
    assert att.targets == predicted.tolist()
    # synthviz runs the fused twin (batch norms folded, channels-last): the same function, rounded
    # differently, which can flip a ReLU6 gate at a few pixels. 0.04% of the gradient's norm here,
    # while float32 itself is 0.5% away from the float64 gradient on this network.
    def relative_error(a, b):
        return float((a - b).norm() / b.norm())

    assert relative_error(att.raw, x.grad) < 1e-3
    assert relative_error(att.maps, x.grad.abs().amax(1, keepdim=True)) < 1e-3
    maps = synthviz.saliency(embedded, pair, method="vanilla")
    assert maps.shape == (2, 1, 112, 112) and torch.allclose(maps, att.maps)
    # grad x input is the same gradient times the pixels
    gxi = synthviz.saliency(embedded, pair, method="grad_x_input", reduce="none")
    assert gxi.shape == pair.shape and relative_error(gxi, x.grad * pair) < 1e-3


def test_every_method_is_batched_and_shaped_like_the_batch(embedded, pair):
    x = resize(pair, (64, 64))
    for name in method_names("all"):
        # layer: a 40-channel stage, so that Score-CAM's one forward per channel stays quick
        maps = synthviz.saliency(embedded, x, method=name, target=[285, 967], samples=2, steps=4, batch_size=8,
                                 layer="_blocks.3._bn2")
        assert maps.shape == (2, 1, 64, 64), name
        assert torch.isfinite(maps).all() and maps.abs().sum() > 0, name
        # batched == one at a time
        one = synthviz.saliency(embedded, x[1:], method=name, target=967, samples=2, steps=4, batch_size=8,
                                layer="_blocks.3._bn2")
        if name == "gradcam_plusplus":  # α = g²/(2g² + ΣA·g³) amplifies float noise where the denominator is near 0
            from scipy.stats import spearmanr

            assert spearmanr(maps[1:].flatten(), one.flatten()).statistic > 0.999, name
        elif name != "smoothgrad":  # the noise draws differ with the batch
            assert torch.allclose(maps[1:], one, rtol=1e-3, atol=1e-5), name
    assert method_names("ig,vanilla,guided") == ["integrated_gradients", "gradient", "guided_backprop"]


def test_python_defaults_match_the_shared_option_table():
    # each method's defaults are read from its own signature: they cannot disagree with the function
    for name in method_names("all"):
        info = method_info(name)
        params = list(inspect.signature(info.fn).parameters.values())[3:]
        expected = {p.name: p.default for p in params if p.default is not p.empty and not p.name.startswith("_")}
        assert info.defaults == expected, name
    table = option_defaults()
    assert method_info("ig").defaults["rule"] == table["rule"] == "gauss-legendre"
    assert table["steps"] == 64 and table["batch_size"] == 16 and table["layer"] is None


# --------------------------------------------------------------------------- integrated gradients

def test_integrated_gradients_completeness_on_embedded_model(embedded, chelsea):
    x = resize(chelsea, (160, 240))
    with torch.no_grad():
        delta = (embedded(x)[0, 285] - embedded(torch.zeros_like(x))[0, 285]).item()
    gaps = {}
    for steps in (64, 256):
        att = attribute(embedded, x, "integrated_gradients", 285, steps=steps)
        assert att.info["delta"][0] == pytest.approx(delta, rel=1e-4)
        gaps[steps] = att.raw.sum().item() - delta
        assert gaps[steps] == pytest.approx(att.info["completeness_gap"][0], abs=1e-3)
    # the path gradient of a ReLU6 network is rough: 9 % of delta at 64 steps here, under 1 % at 256
    assert abs(gaps[256]) < 0.01 * abs(delta) and abs(gaps[256]) < abs(gaps[64])
    assert att.maps.shape == (1, 1, 160, 240)


class Cubic(nn.Module):
    """logit_c = (w_c · x)^3: integrated gradients from a black baseline is x_j w_cj (w_c · x)^2 exactly."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x.flatten(1) @ self.w.t()) ** 3


def test_integrated_gradients_rules_against_the_analytic_answer():
    torch.manual_seed(0)
    w = torch.randn(2, 3 * 8 * 8) * 0.2
    m = plain(Cubic(w))
    x = torch.rand(2, 3, 8, 8)
    t = torch.tensor([0, 1])
    wx = (x.flatten(1) * w[t]).sum(1)
    exact = (x.flatten(1) * w[t] * wx[:, None] ** 2).view_as(x)
    gl = attribute(m, x, "ig", [0, 1], steps=4, rule="gauss-legendre").raw  # exact for cubics
    assert torch.allclose(gl, exact, rtol=1e-4, atol=1e-6)
    errors = [(attribute(m, x, "ig", [0, 1], steps=n, rule="riemann").raw - exact).abs().max() for n in (4, 16, 64)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-2 * exact.abs().max()
    half = attribute(m, x, "ig", [0, 1], steps=4, baseline=torch.full((1, 3, 8, 8), 0.5)).info
    assert max(abs(g) for g in half["completeness_gap"]) < 1e-3


# --------------------------------------------------------------------------- Grad-CAM

class CamNet(nn.Module):
    """conv (1x1, stride 2, picks R and G, bias -0.5) -> in-place ReLU -> global mean -> linear W."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, stride=2)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1
            self.conv.weight[1, 1] = 1
            self.conv.bias.fill_(-0.5)
            self.fc.weight.copy_(w)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean((2, 3)))


def test_gradcam_matches_the_analytic_answer():
    w = torch.tensor([[1.0, -2.0], [-1.0, 1.5]])
    m = plain(CamNet(w), "cam")
    torch.manual_seed(1)
    x = torch.rand(2, 3, 16, 24)
    att = attribute(m, x, "gradcam", [0, 1], layer="conv")
    a = x[:, :2, ::2, ::2] - 0.5                       # the conv output, before the in-place ReLU
    hw = a.shape[-2] * a.shape[-1]
    frac = (a > 0).float().mean((2, 3))                # ∂score/∂A is W[c,k]/(hw) where A > 0, else 0
    alpha = torch.stack([w[0] * frac[0], w[1] * frac[1]]) / hw
    raw = (alpha[:, :, None, None] * a).sum(1, keepdim=True)
    assert torch.allclose(att.raw, raw, atol=1e-6)
    expected = F.interpolate(raw.clamp(min=0), size=(16, 24), mode="bilinear", align_corners=False)
    assert torch.allclose(att.maps, expected, atol=1e-6)
    assert att.maps.shape == (2, 1, 16, 24) and (att.maps >= 0).all() and (raw < 0).any()


def test_gradcam_bad_layers_are_one_line_errors(embedded, chelsea128):
    with pytest.raises(SynthvizError, match="not convolutional.*_bn1"):
        attribute(embedded, chelsea128, "gradcam", layer="_fc")
    with pytest.raises(SynthvizError, match="not convolutional"):
        attribute(embedded, chelsea128, "gradcam", layer="logits")
    with pytest.raises(SynthvizError, match="unknown layer '_block.5'.*did you mean"):
        attribute(embedded, chelsea128, "gradcam", layer="_block.5")
    before = model_state(embedded)
    cam = attribute(embedded, chelsea128, "gradcam", 285)
    assert cam.info["layer"] == "_bn1" and cam.raw.shape == (1, 1, 4, 4)
    assert same_state(before, model_state(embedded))


# --------------------------------------------------------------------------- guided backprop

class Probe(nn.Module):
    """Identity that records the gradient arriving at its output: placed right before an activation,
    that is the backward signal the activation passes down."""

    def __init__(self):
        super().__init__()
        self.grads: list[torch.Tensor] = []

    def forward(self, x):
        x = x.clone()
        if x.requires_grad:
            x.register_hook(lambda g: self.grads.append(g.detach().clone()))
        return x


class ProbeNet(nn.Module):
    """conv -> act -> conv -> act -> mean -> linear, with the activation given as ``kind``."""

    def __init__(self, kind: str):
        super().__init__()
        torch.manual_seed(3)
        self.kind = kind
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 3)
        with torch.no_grad():
            self.conv1.weight.mul_(12)  # large activations: some ReLU6 inputs are above 6
        self.p1, self.p2 = Probe(), Probe()
        self.act = {"inplace": nn.ReLU(inplace=True), "relu6": nn.ReLU6(), "functional": None}[kind]
        self.acts_in: list[torch.Tensor] = []

    def activation(self, x):
        self.acts_in.append(x.detach().clone())
        return F.relu(x) if self.kind == "functional" else self.act(x)

    def forward(self, x):
        x = self.activation(self.p1(self.conv1(x)))
        x = self.activation(self.p2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize("kind", ["inplace", "functional", "relu6"])
def test_guided_backprop_passes_only_positive_signals(kind):
    net = ProbeNet(kind)
    m = plain(net, kind, classes=3)
    net.train()
    net.fc.weight.requires_grad_(True)  # a user's half-trained model: these must come back as they were
    before = model_state(m)
    x = torch.rand(2, 3, 12, 12)

    def signals(method):
        net.p1.grads.clear(), net.p2.grads.clear(), net.acts_in.clear()
        att = attribute(m, x, method, [0, 2])
        return att, [net.p1.grads[0], net.p2.grads[0]], list(net.acts_in)

    _, plain_grads, _ = signals("gradient")
    assert any((g < 0).any() for g in plain_grads)  # the plain gradient does pass negative signals
    guided, grads, inputs = signals("guided_backprop")
    for g, a in zip(grads, inputs):
        assert (g >= 0).all() and (g > 0).any()
        assert (g[a <= 0] == 0).all()
        if kind == "relu6":
            assert (g[a >= 6] == 0).all()
    assert kind != "relu6" or (inputs[0] >= 6).any()
    assert not torch.allclose(guided.raw, attribute(m, x, "gradient", [0, 2]).raw)
    assert same_state(before, model_state(m)) and net.training
    assert torch._C._len_torch_function_stack() == 0


class Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU(inplace=True)
        self.fail = True

    def forward(self, x):
        x = self.relu(self.conv(x))
        if self.fail:
            raise RuntimeError("boom")
        return x.mean((2, 3))


def test_guided_backprop_leaves_the_model_as_it_was_after_an_error():
    net = Exploding().train()
    m = plain(net, "exploding", classes=4)
    net.train()
    before = model_state(m)
    with pytest.raises(RuntimeError, match="boom"):
        attribute(m, torch.rand(1, 3, 8, 8), "guided_backprop", 0)
    assert same_state(before, model_state(m)) and net.training
    assert torch._C._len_torch_function_stack() == 0
    # ReLU backward is the ordinary one again: negative gradient passes where the input is positive
    z = torch.tensor([1.0, -1.0], requires_grad=True)
    torch.relu(z).backward(torch.tensor([-3.0, 5.0]))
    assert z.grad.tolist() == [-3.0, 0.0]


def test_guided_backprop_on_the_embedded_relu6_model(embedded, chelsea128):
    before = model_state(embedded)
    with torch.no_grad():
        logits = embedded(chelsea128)
    with GuidedReLU() as mode:
        embedded(chelsea128.clone().requires_grad_(True))
    assert mode.calls > 30  # every ReLU6 call of the network, the reused ones included
    guided = attribute(embedded, chelsea128, "guided_backprop", 285)
    vanilla = attribute(embedded, chelsea128, "gradient", 285)
    assert not torch.allclose(guided.raw, vanilla.raw, atol=1e-6)
    assert same_state(before, model_state(embedded))
    with torch.no_grad():
        assert torch.equal(embedded(chelsea128), logits)


# --------------------------------------------------------------------------- occlusion & SmoothGrad

class PatchNet(nn.Module):
    """Class 0's score is the sum of the red channel inside one 8x8 patch; nothing else matters."""

    def forward(self, x):
        s = x[:, 0, 16:24, 40:48].sum((1, 2))
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_occlusion_finds_the_one_informative_patch():
    m = plain(PatchNet(), "patch")
    x = torch.rand(1, 3, 64, 64) * 0.5 + 0.5
    att = attribute(m, x, "occlusion", 0, window=8, stride=4, value=0.0)
    maps = att.maps[0, 0]
    peak = np.unravel_index(maps.argmax().item(), maps.shape)
    assert 16 <= peak[0] < 24 and 40 <= peak[1] < 48
    far = torch.ones_like(maps, dtype=torch.bool)
    far[12:28, 36:52] = False  # pixels no window touching the patch ever covered
    assert maps[far].abs().max() == 0 and maps[16:24, 40:48].min() > 0


def test_smoothgrad_is_seeded_and_reduces_to_its_base(embedded, chelsea128):
    x = resize(chelsea128, (64, 64))
    base = attribute(embedded, x, "gradient", 285)
    same = attribute(embedded, x, "smoothgrad", 285, samples=1, noise=0.0)
    assert torch.allclose(same.maps, base.maps, rtol=1e-5, atol=1e-6)
    a = attribute(embedded, x, "smoothgrad", 285, samples=3, seed=1)
    b = attribute(embedded, x, "smoothgrad", 285, samples=3, seed=1)
    c = attribute(embedded, x, "smoothgrad", 285, samples=3, seed=2)
    assert torch.equal(a.maps, b.maps) and not torch.allclose(a.maps, c.maps)
    cam = attribute(embedded, x, "smoothgrad", 285, samples=2, base="gradcam", squared=True)
    assert cam.maps.shape == (1, 1, 64, 64) and (cam.maps >= 0).all()


# --------------------------------------------------------------------------- targets, sanity, figure

def test_bad_targets_and_images_are_one_line_errors(embedded, chelsea128, tmp_path):
    with pytest.raises(SynthvizError, match="class 1000 is out of range.*0..999"):
        synthviz.saliency(embedded, chelsea128, target=1000)
    with pytest.raises(SynthvizError, match="2 targets for 1 images"):
        synthviz.saliency(embedded, chelsea128, target=[1, 2])
    with pytest.raises(SynthvizError, match="unknown saliency method 'gradcan'.*gradcam"):
        synthviz.saliency(embedded, chelsea128, method="gradcan")
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(SynthvizError, match="cannot read .*notes.png"):
        synthviz.saliency(embedded, str(bad))
    with pytest.raises(SynthvizError, match=r"\[0, 1\]"):
        synthviz.saliency(embedded, chelsea128 * 255)
    assert attribute(embedded, chelsea128, "gradient", "Egyptian cat").targets == [285]


def test_cascading_randomization_decorrelates_the_gradient_not_guided_backprop(embedded, chelsea128):
    before = model_state(embedded)
    result = synthviz.sanity(embedded, chelsea128, method="gradient", size=128)
    corr = result.info["correlations"]
    layers = result.info["layers"]
    assert layers[:4] == ["original", "_fc", "_bn1", "_conv_head"] and layers[-1] == "_conv_stem"
    assert corr[0] == 1.0 and len(corr) == 22 and result.images.shape == (22, 3, 128, 128)
    assert result.labels == layers and torch.allclose(result.scores, torch.tensor(corr))
    assert abs(corr[-1]) < 0.15 and np.mean(corr[-5:]) < np.mean(corr[1:6]) < 0.6
    # 23 tiles wrap into rows of 6 over the chart: readable as a thumbnail, not a 23-tile strip
    height, width = result.figure.shape[-2:]
    assert width <= 2 * height, (width, height)
    guided = synthviz.sanity(embedded, chelsea128, method="guided_backprop", size=128, depth=5).info["correlations"]
    assert len(guided) == 6 and min(guided) > 0.9  # Adebayo et al.: guided backprop ignores the top layers
    assert same_state(before, model_state(embedded))
    assert result.figure.shape[0] == 3 and result.figure.shape[1] > 112 + 200


def test_randomization_blocks_open_containers(tiny):
    assert randomization_blocks(tiny, torch.rand(1, 3, 16, 16)) == ["conv1", "conv2", "conv3", "fc"]


def test_colormap_runs_dark_to_bright():
    ramp = colormap(torch.linspace(0, 1, 11).view(1, 11))
    lum = (ramp * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0)[0]
    assert ramp.shape == (3, 1, 11) and (lum[1:] > lum[:-1]).all() and lum[0] < 0.05 and lum[-1] > 0.85


def test_figure_with_classviz(embedded, chelsea128):
    result = saliency_figure(embedded, chelsea128, methods="gradient,gradcam", size=64, with_classviz=True,
                             classviz_steps=3)
    assert set(result.info["methods"]) == {"gradient", "gradcam"} and "classviz_probability" in result.info
    assert result.labels == ["gradient", "Grad-CAM"] and result.images.shape == (2, 3, 64, 64)
    assert result.figure.shape == (3, 64 + 14 + 4, 4 * 66 + 2)  # photo, two maps, classviz; labels under each
    assert result.info["cls"] == 285 and result.info["label"] == "Egyptian cat"


# --------------------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def photo_file(tmp_path_factory, chelsea):
    path = tmp_path_factory.mktemp("photos") / "cat.png"
    save_image(resize(chelsea, 96), path)
    return path


def test_cli_saliency_writes_figure_and_raw_maps(photo_file, tmp_path):
    runner = CliRunner()
    out = tmp_path / "fig.png"
    args = ["saliency", str(photo_file), "--methods", "gradient,gradcam,occlusion", "--size", "64", "--device", "cpu",
            "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert out.exists() and "Egyptian cat" in res.output
    raw = np.load(tmp_path / "fig-gradcam.npy")
    assert raw.shape == (1, 1, 43, 64) and raw.min() >= 0 and raw.max() > 0
    assert np.load(tmp_path / "fig-occlusion.npy").shape == (1, 1, 43, 64)
    again = runner.invoke(app, args)  # never overwrites: a free name
    assert again.exit_code == 0 and (tmp_path / "fig-1.png").exists() and (tmp_path / "fig-gradient-1.npy").exists()


@pytest.mark.parametrize("extra, message", [
    (["--class", "1000"], "class 1000 is out of range"),
    (["--methods", "gradcam", "--layer", "_fc"], "not convolutional"),
    (["--methods", "gradient,smooth"], "unknown saliency method 'smooth'"),
])
def test_cli_saliency_bad_input(photo_file, tmp_path, extra, message):
    res = CliRunner().invoke(app, ["saliency", str(photo_file), "--size", "64", "--out", str(tmp_path / "f.png")] + extra)
    assert res.exit_code == 2 and message in res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error:")


def test_cli_saliency_non_image_file(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    res = CliRunner().invoke(app, ["saliency", str(bad), "--out", str(tmp_path / "f.png")])
    assert res.exit_code == 2 and res.output.startswith("error: cannot read") and res.output.count("\n") == 1, res.output


def test_cli_sanity_writes_figure_and_table(photo_file, tmp_path):
    out = tmp_path / "sanity.png"
    res = CliRunner().invoke(app, ["sanity", str(photo_file), "--method", "gradient", "--size", "64",
                                   "--tile", "48", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = (tmp_path / "sanity.csv").read_text().strip().splitlines()
    assert rows[0] == "step,randomized_down_to,spearman_abs" and len(rows) == 23
    assert rows[1].startswith("0,original,1.0") and out.exists()
