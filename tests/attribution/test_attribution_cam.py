"""The CAM family, DeconvNet and the attribution registry: each method against pytorch-grad-cam
1.5.7 at the same layer on the embedded model, and against hand-built models with known answers."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

import synthviz
from synthviz.attribution import attribute, method_info, method_names
from synthviz.errors import SynthvizError
from synthviz.io import resize
from synthviz.models import Model

pgc = pytest.importorskip("pytorch_grad_cam")


def plain(net: nn.Module, name: str = "toy", classes: int = 2) -> Model:
    return Model(net, mean=(0, 0, 0), std=(1, 1, 1), classes=[f"c{i}" for i in range(classes)], name=name, min_size=4)


def rank(a, b) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(spearmanr(a, b).statistic)


@pytest.fixture(scope="module")
def cat(chelsea):
    return resize(chelsea, (128, 160))


def theirs(cls, model, x, layer_module, cls_index, **call):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layers = [layer_module] if layer_module is not None else []
    with cls(model=model.net, target_layers=layers, **({} if cls.__name__ != "AblationCAM" else {"batch_size": 32})) as cam:
        # the embedded model's parameters are frozen: the input must require grad for their backward
        return cam(input_tensor=model.normalize(x).requires_grad_(True), targets=[ClassifierOutputTarget(cls_index)], **call)


# --------------------------------------------------------------------------- vs pytorch-grad-cam

GRADIENT_CAMS = {"gradcam": "GradCAM", "gradcam_plusplus": "GradCAMPlusPlus", "xgradcam": "XGradCAM",
                 "hirescam": "HiResCAM", "layercam": "LayerCAM"}


@pytest.mark.parametrize("name", list(GRADIENT_CAMS))
def test_gradient_cams_match_pytorch_grad_cam(embedded, cat, name):
    ref = theirs(getattr(pgc, GRADIENT_CAMS[name]), embedded, cat, embedded.net._bn1, 285)
    ours = attribute(embedded, cat, name, 285, layer="_bn1").maps
    assert rank(ours, ref) >= 0.99, name
    if name not in ("layercam", "gradcam"):
        return
    # and at an early layer (LayerCAM's point)
    ref = theirs(getattr(pgc, GRADIENT_CAMS[name]), embedded, cat, embedded.net._blocks[3]._bn2, 285)
    ours = attribute(embedded, cat, name, 285, layer="_blocks.3._bn2").maps
    assert rank(ours, ref) >= 0.99, name


def test_smoothings_match_pytorch_grad_cam(embedded, cat):
    ref = theirs(pgc.GradCAM, embedded, cat, embedded.net._blocks[10]._bn2, 285, eigen_smooth=True)
    ours = attribute(embedded, cat, "gradcam", 285, layer="_blocks.10._bn2", eigen_smooth=True).maps
    assert abs(rank(ours, ref)) >= 0.99  # pytorch-grad-cam leaves the principal component's sign to chance
    ref = theirs(pgc.GradCAM, embedded, cat, embedded.net._bn1, 285, aug_smooth=True)
    ours = attribute(embedded, cat, "gradcam", 285, layer="_bn1", aug_smooth=True).maps
    assert rank(ours, ref) >= 0.99


def test_eigencam_matches_pytorch_grad_cam_up_to_sign(embedded, cat):
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    from synthviz.layers import capture

    act = capture(embedded, cat, ["_blocks.10._bn2"])["_blocks.10._bn2"]
    proj = get_2d_projection(act.numpy())
    att = attribute(embedded, cat, "eigencam", layer="_blocks.10._bn2")
    raw = att.raw[:, 0].numpy()
    sign = 1.0 if (raw * proj).sum() > 0 else -1.0
    assert np.allclose(raw, sign * proj, atol=1e-3 * np.abs(proj).max())
    # our sign convention: the map correlates positively with the mean activation over channels
    assert np.corrcoef(raw.ravel(), act.mean(1).numpy().ravel())[0, 1] > 0


def test_fullgrad_matches_pytorch_grad_cam(embedded, chelsea128):
    ref = theirs(pgc.FullGrad, embedded, chelsea128, None, 285)
    ours = attribute(embedded, chelsea128, "fullgrad", 285).maps
    assert rank(ours, ref) >= 0.99


def test_scorecam_matches_pytorch_grad_cam(embedded, chelsea128):
    layer, module = "_blocks.3._bn2", embedded.net._blocks[3]._bn2  # 40 channels: a quick reference run
    x = resize(chelsea128, (64, 64))
    ref = theirs(pgc.ScoreCAM, embedded, x, module, 285)
    ours = attribute(embedded, x, "scorecam", 285, layer=layer).maps
    assert rank(ours, ref) >= 0.9


@pytest.mark.parametrize("layer", ["_bn1", "_conv_head"])  # _conv_head: a Conv2d subclass fx must not enter
def test_ablation_cam_runs_only_the_layers_after_it(embedded, chelsea, layer):
    x = resize(chelsea, (64, 96))
    calls = []
    handle = embedded.net._conv_stem.register_forward_hook(lambda *a: calls.append(1))
    try:  # a hook of the user's sends the work to the hooked network: trace that one first
        attribute(embedded, x, "ablationcam", 285, layer=layer)  # traced once (fx runs hooks while tracing)
        calls.clear()
        ours = attribute(embedded, x, "ablationcam", 285, layer=layer)
    finally:
        handle.remove()
    assert len(calls) == 2  # the clean forward and the one to the layer; none for the 1280 ablations
    # a layer with a skip connection around it cannot be cut there: full forwards, same definition
    blocks = attribute(embedded, resize(x, (48, 48)), "ablationcam", 285, layer="_blocks.3._bn2")
    assert torch.isfinite(blocks.maps).all() and blocks.maps.max() > 0
    assert torch.isfinite(ours.maps).all() and ours.maps.max() > 0


def test_ablation_cam_matches_pytorch_grad_cam(embedded, chelsea):
    """Compared at _bn1, where pytorch-grad-cam's ablation value (min − 1e7) and ours (0, the paper's)
    agree: the ReLU6 after it maps both to 0. At a layer with a residual sum after it they differ.
    (Its speed beside pytorch-grad-cam's is measured by benchmarks/saliency.py, not here.)"""
    x = resize(chelsea, (64, 96))
    ours = attribute(embedded, x, "ablationcam", 285, layer="_bn1")
    ref = theirs(pgc.AblationCAM, embedded, x, embedded.net._bn1, 285)
    assert rank(ours.maps, ref) >= 0.9


# --------------------------------------------------------------------------- known answers

class GapNet(nn.Module):
    """conv 3x3 -> ReLU -> global mean -> linear (+ optional exp of the logits)."""

    def __init__(self, classes: int = 3, exp: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, classes)
        self.exp = exp

    def forward(self, x):
        y = self.fc(self.pool(self.relu(self.conv(x))).flatten(1))
        return y.exp() if self.exp else y


def test_cam_is_gradcam_up_to_a_positive_factor_on_gap_linear():
    m = plain(GapNet(), "gap", classes=3)
    x = torch.rand(2, 3, 12, 16)
    cam = attribute(m, x, "cam", [0, 2])
    grad = attribute(m, x, "gradcam", [0, 2], layer="relu")
    assert torch.allclose(cam.raw / (12 * 16), grad.raw, atol=1e-6)  # α_k = w_ck / (h w)
    net = GapNet()
    with torch.no_grad():  # the definition, computed by hand
        a = net.relu(net.conv(x))
        expected = torch.einsum("bk,bkhw->bhw", net.fc.weight[[0, 2]], a)[:, None]
    assert torch.allclose(cam.raw, expected, atol=1e-5)
    with pytest.raises(SynthvizError, match="global average pooling"):
        attribute(plain(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)), "flat"), torch.rand(1, 3, 8, 8), "cam", 0)


def test_gradcam_plusplus_closed_form_on_an_exponential_head():
    """S = exp(Y) with Y linear in A: ∂S/∂A = S g, ∂²S = S g², ∂³S = S g³ (g = ∂Y/∂A = w_k/Z where the
    ReLU is open), so α = g² / (2g² + Σ_ab A_ab g³) and w_k = S Σ_ij α_ij ReLU(g_ij)."""
    net = GapNet(exp=True)
    m = plain(net, "exp", classes=3)
    x = torch.rand(1, 3, 8, 8)
    att = attribute(m, x, "gradcam_plusplus", 1, layer="conv")
    with torch.no_grad():
        a = net.conv(x)[0]                                     # the layer's output (C, h, w), pre-ReLU
        z = a.shape[1] * a.shape[2]
        g = (net.fc.weight[1][:, None, None] / z) * (a > 0)    # ∂Y/∂A
        s = net(x)[0, 1]
        g = s * g                                              # the exp head's gradient (what autograd sees)
        alpha = g ** 2 / (2 * g ** 2 + a.sum((1, 2), keepdim=True) * g ** 3 + 1e-6)
        alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
        w = (alpha * g.clamp(min=0)).sum((1, 2))
        expected = (w[:, None, None] * a).sum(0)
    assert torch.allclose(att.raw[0, 0], expected, rtol=1e-4, atol=1e-6)


def test_eigencam_is_the_projection_on_the_first_singular_vector():
    m = plain(GapNet(), "gap", classes=3)
    x = torch.rand(2, 3, 10, 10)
    att = attribute(m, x, "eigencam", layer="conv")
    with torch.no_grad():
        acts = GapNet().conv(x)
    for i in range(2):
        mat = acts[i].flatten(1).T.double().numpy()
        mat = mat - mat.mean(0)
        _, _, vt = np.linalg.svd(mat)
        proj = (mat @ vt[0]).reshape(10, 10)
        mean = acts[i].mean(0).numpy()
        proj = proj if np.corrcoef(proj.ravel(), mean.ravel())[0, 1] > 0 else -proj
        assert np.allclose(att.raw[i, 0].numpy(), proj, atol=1e-5)


class RegionNet(nn.Module):
    """A 1x1 conv of 4 channels, each lit by one quadrant; class 0's score is the red mean of the
    top-left quadrant only (through the input, as Score-CAM's masks see it)."""

    def __init__(self):
        super().__init__()
        self.feat = nn.Conv2d(3, 4, 1)
        with torch.no_grad():
            self.feat.weight.fill_(0.1)
            self.feat.bias.zero_()

    def forward(self, x):
        f = self.feat(x)                                       # keeps the layer in the graph
        s = x[:, 0, :16, :16].mean((1, 2)) * 10 + 0 * f.sum((1, 2, 3))
        return torch.stack([s, -s], 1)


def test_scorecam_finds_the_one_informative_region_and_survives_constant_maps():
    net = RegionNet()
    m = plain(net, "region")
    x = torch.rand(1, 3, 32, 32) * 0.5 + 0.5
    quadrant = torch.zeros(1, 4, 32, 32)
    for k, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        quadrant[0, k, 16 * r:16 * r + 16, 16 * c:16 * c + 16] = 1
    with torch.no_grad():
        net.feat.weight.zero_()
    # make the layer output the quadrant indicators: a conv cannot, so edit its bias per position
    net.feat.register_forward_hook(lambda mod, i, o: quadrant.expand(len(o), -1, -1, -1).clone())
    att = attribute(m, x, "scorecam", 0, layer="feat")
    maps = att.maps[0, 0]
    assert maps[:16, :16].mean() > 2 * maps[16:, 16:].mean()
    peak = np.unravel_index(maps.argmax().item(), maps.shape)
    assert peak[0] < 16 and peak[1] < 16
    net.feat._forward_hooks.clear()
    const = attribute(m, x, "scorecam", 0, layer="feat")  # zero weights: every activation map is constant
    assert torch.isfinite(const.maps).all() and torch.isfinite(const.raw).all()


class ReluProbe(nn.Module):
    def __init__(self):
        super().__init__()
        self.grads: list = []
        self.inputs: list = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        x = x.clone()
        if x.requires_grad:
            x.register_hook(lambda g: self.grads.append(g.detach().clone()))
        return x


class DeconvNetToy(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        torch.manual_seed(4)
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.p1, self.p2 = ReluProbe(), ReluProbe()
        self.q1, self.q2 = ReluProbe(), ReluProbe()
        self.fc = nn.Linear(8, 3)
        self.kind = kind
        self.act = {"inplace": nn.ReLU(inplace=True), "relu6": nn.ReLU6(), "functional": F.relu}[kind]

    def forward(self, x):
        x = self.q1(self.act(self.p1(self.c1(x) * 8)))
        x = self.q2(self.act(self.p2(self.c2(x))))
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize("kind", ["inplace", "functional", "relu6"])
def test_deconvnet_passes_no_negative_gradient(kind):
    net = DeconvNetToy(kind)
    m = plain(net, kind, classes=3)
    x = torch.rand(2, 3, 10, 10)
    att = attribute(m, x, "deconvnet", [0, 2])
    for before, after in ((net.p1, net.q1), (net.p2, net.q2)):
        below, above = before.grads[-1], after.grads[-1]       # gradient under and over the activation
        assert (below >= 0).all() and (below > 0).any()
        assert torch.allclose(below, above.clamp(min=0))       # ReLU(grad), whatever the forward sign
        assert ((before.inputs[-1] < 0) & (below > 0)).any()   # unlike guided backprop: negative inputs pass
    assert (above < 0).any()
    assert not torch.allclose(att.raw, attribute(m, x, "guided_backprop", [0, 2]).raw)


# --------------------------------------------------------------------------- registry, sanity, folder

def test_registry_lists_every_issue_method_with_its_facts():
    names = method_names("all")
    for n in ("deconvnet", "cam", "gradcam_plusplus", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam",
              "ablationcam", "fullgrad"):
        assert n in names
        info = method_info(n)
        assert info.label and info.cost and info.family in ("guided", "cam")
    assert method_names("gradcam++, score-cam,deconv") == ["gradcam_plusplus", "scorecam", "deconvnet"]
    assert method_info("ablationcam").defaults == {"layer": None, "batch_size": 64, "aug_smooth": False,
                                                   "eigen_smooth": False}
    with pytest.raises(SynthvizError, match=r"unknown saliency method 'gradcam\+'.*did you mean"):
        method_names("gradcam+")


def test_sanity_check_runs_on_every_method(tiny):
    x = torch.rand(1, 3, 16, 16)
    for name in method_names("all"):
        result = synthviz.sanity(tiny, x, method=name, size=16, tile=16, samples=2, steps=4, window=8, stride=8)
        corr = result.info["correlations"]
        assert len(corr) == 5 and corr[0] == 1.0, name
        assert all(np.isfinite(c) for c in corr), name
        assert result.figure.shape[0] == 3


def test_predicted_targets_are_resolved_once_for_smoothed_cams(embedded, chelsea128, skimage_image):
    x = torch.cat([resize(chelsea128, (48, 48)), resize(skimage_image("coffee"), (48, 48))])
    both = attribute(embedded, x, "gradcam", None, aug_smooth=True)
    assert both.targets == attribute(embedded, x, "gradient").targets
    assert both.maps.shape == (2, 1, 48, 48) and torch.isfinite(both.maps).all()


def test_cli_saliency_on_a_folder(tmp_path, chelsea, skimage_image):
    from typer.testing import CliRunner

    from synthviz.cli.app import app
    from synthviz.io import save_image

    photos = tmp_path / "photos"
    photos.mkdir()
    save_image(resize(chelsea, 96), photos / "cat.png")
    save_image(resize(skimage_image("coffee"), 96), photos / "coffee.jpg")
    (photos / "notes.txt").write_text("not a photo")
    out = tmp_path / "maps.png"
    res = CliRunner().invoke(app, ["saliency", str(photos), "--methods", "gradient,layercam", "--size", "64",
                                   "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    folder = tmp_path / "maps"
    assert (folder / "cat.png").exists() and (folder / "coffee.png").exists()
    arrays = np.load(folder / "maps.npz")
    assert sorted(arrays.files) == ["cat/gradient", "cat/layercam", "coffee/gradient", "coffee/layercam"]
    assert arrays["cat/layercam"].shape == (1, 1, 43, 64) and arrays["cat/layercam"].max() > 0
    rows = (folder / "targets.csv").read_text().strip().splitlines()
    assert rows[0] == "image,target,label,logit,probability" and len(rows) == 3
    cat = rows[1].split(",")
    x = synthviz.io.load_image(photos / "cat.png", 64)
    model = synthviz.load_model("efficientnet_lite0", device="cpu")
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
    predicted = int(probs.argmax())
    assert cat[0] == "cat.png" and int(cat[1]) == predicted and float(cat[4]) == pytest.approx(float(probs[predicted]), rel=1e-4)
    assert cat[2] in ("tiger cat", "Egyptian cat", "tabby")  # a cat at 64 px (at 48: "lion")
    # the maps are those of the Python API on the same input
    expected = attribute(model, x, "gradient", predicted).maps
    assert np.allclose(arrays["cat/gradient"], expected.numpy(), rtol=1e-4, atol=1e-6)
