"""The fused twin (synthviz.fusion): batch norms folded into their convolutions, channels-last.
It must compute what the original computes, follow every change to the original, and step aside
whenever a caller needs the original's own modules."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from synthviz.attribution import attribute
from synthviz.io import resize
from synthviz.layers import LOGITS, Tap
from synthviz.models import Model


def relative_error(a, b) -> float:
    return float((a - b).norm() / b.norm())


class SharedConv(nn.Module):
    """A conv whose output feeds its batch norm AND a skip connection: it must not be folded."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)
        for bn in (self.bn, self.bn2):  # statistics far from the identity, so a wrong fold shows
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 2)
            bn.bias.data.uniform_(-1, 1)

    def forward(self, x):
        y = self.conv(x)
        z = self.bn2(self.conv2(torch.relu(self.bn(y)) + y))
        return self.head(torch.relu(z).mean((2, 3)))


@pytest.fixture
def photo(chelsea):
    return torch.nn.functional.interpolate(chelsea, size=(64, 64), mode="area")


def test_twin_computes_the_originals_outputs_on_the_embedded_model(embedded, photo):
    embedded.fuse = True
    with torch.no_grad():
        fused = embedded(photo)
        twin = embedded._twin[1]
        assert twin.net is not None and twin.channels_last and len(twin.folded) > 40
        plain = embedded(photo, net=embedded.net)
    assert relative_error(fused, plain) < 1e-5
    assert fused.argmax() == plain.argmax()


def test_only_a_conv_read_by_its_batch_norm_alone_is_folded(photo):
    model = Model(SharedConv(), classes=["a", "b", "c"], owned=False)
    with torch.no_grad():
        out = model(photo)
        assert model._twin[1].folded == {"conv2"}  # conv's output is also the skip connection
        assert relative_error(out, model(photo, net=model.net)) < 1e-5


def test_twin_follows_changes_to_the_network(photo):
    net = torchvision.models.resnet18(num_classes=10).eval()
    model = Model(net, owned=False)
    with torch.no_grad():
        model(photo)
        first = model._twin[1].net
        net.layer1[0].bn1.weight.mul_(3)  # written in place
        changed = model(photo)
        assert model._twin[1].net is not first
        assert relative_error(changed, model(photo, net=net)) < 1e-5
        net.layer4, net.fc = nn.Identity(), nn.Linear(256, 10)  # modules swapped
        assert relative_error(model(photo), model(photo, net=net)) < 1e-5


def test_hooks_on_a_folded_conv_and_user_hooks_see_the_original(embedded, photo):
    seen = []
    with torch.no_grad():
        with Tap(embedded, ["_conv_head"]) as tap:  # a folded conv: its own (pre-batch-norm) output
            act = tap(photo)["_conv_head"]
            assert tap.net is embedded.net
        handle = embedded.net._conv_head.register_forward_hook(lambda m, i, o: seen.append(o))
        try:
            embedded(photo)
        finally:
            handle.remove()
    assert len(seen) == 1 and torch.equal(seen[0], act)


def test_the_user_network_is_left_as_it_was(photo):
    net = torchvision.models.resnet18(num_classes=10).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    model = Model(net, owned=False)
    with torch.no_grad():
        model(photo)
    assert net.training and all(m.training for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(type(m) is not nn.Identity for m in net.modules())


def test_switched_off(photo, monkeypatch):
    monkeypatch.setenv("SYNTHVIZ_FUSE", "0")
    model = Model(torchvision.models.resnet18(num_classes=10), owned=False)
    assert model.runner(photo) is model.net


# --------------------------------------------------------------------------- folded convolutions read from the twin

class ConvBN(nn.Module):
    """conv -> batch norm (statistics far from the identity) -> ReLU -> mean -> linear."""

    def __init__(self, zero_channel: bool = False):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)
        self.bn.running_mean.uniform_(-1, 1)
        self.bn.running_var.uniform_(0.5, 2)
        self.bn.weight.data.uniform_(0.5, 2)
        self.bn.bias.data.uniform_(-1, 1)
        if zero_channel:
            self.bn.weight.data[2] = 0  # channel 2 of the conv cannot be read back from the twin

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_unfold_is_the_batch_norms_affine_map_and_its_gradient():
    from synthviz.fusion import Unfold

    bn = ConvBN().bn.eval()
    unfold = Unfold.of(bn)
    a = torch.randn(2, 4, 5, 5, requires_grad=True)
    w = torch.randn(2, 4, 5, 5)
    fused = bn(a)
    assert relative_error(unfold.fused_output(a).detach(), fused.detach()) < 1e-6
    assert relative_error(unfold.conv_output(fused).detach(), a.detach()) < 1e-6
    (want,) = torch.autograd.grad((w * fused).sum(), a)  # through nn.BatchNorm2d itself
    passed = unfold.fused_output(a, fused=fused.detach())
    assert torch.equal(passed, fused)  # F passed on exactly, not re-rounded
    (got,) = torch.autograd.grad((w * passed).sum(), a)
    assert relative_error(got, want) < 1e-6
    bn.weight.data[1] = 0
    assert Unfold.of(bn) is None


def test_tap_reads_a_folded_conv_from_the_twin_unless_its_scale_is_zero(photo):
    for zero, on_twin in ((False, True), (True, False)):
        model = Model(ConvBN(zero), classes=["a", "b", "c"], owned=False)
        with torch.no_grad():
            model(photo)  # builds the twin
            assert model._twin[1].net is not None and model._twin[1].folded == {"conv"}
            with Tap(model, ["conv"], unfold=True) as tap:
                got = tap(photo)["conv"]
                assert (tap.net is not model.net) == on_twin
            with Tap(model, ["conv"]) as tap:  # without unfold: the original network, bit for bit
                want = tap(photo)["conv"]
                assert tap.net is model.net
        assert relative_error(got, want) < 1e-6


def test_an_edit_at_a_folded_conv_runs_on_the_twin(embedded, photo):
    layer = "_blocks.8._project_conv"
    edit = {layer: lambda a: a * torch.linspace(0, 1, a.shape[1]).view(1, -1, 1, 1)}
    with torch.no_grad():
        with Tap(embedded, [LOGITS], edit=edit, unfold=True) as tap:
            fused = tap(photo)[LOGITS]
            assert tap.net is embedded._twin[1].net
        with Tap(embedded, [LOGITS], edit=edit) as tap:
            plain = tap(photo)[LOGITS]
            assert tap.net is embedded.net
    assert relative_error(fused, plain) < 1e-5 and not torch.allclose(plain, embedded(photo), rtol=1e-3)


# Grad-CAM++ and XGrad-CAM divide by sums that can come near 0 (2g² + ΣA·g³, ΣA): their float32 maps
# carry rounding far above 1e-5 on either path, so they are held to the float64 computation instead.
# Ablation-CAM's weight (y − y_k) / y subtracts nearly equal scores (one channel of 1280 removed) and
# Score-CAM min-max scales each channel's map (a nearly constant one amplifies its rounding): 3e-5.
ILL_CONDITIONED = ("gradcam_plusplus", "xgradcam")
TOLERANCE = {"ablationcam": 3e-5, "scorecam": 3e-5}
CAMS = ("gradcam", "guided_gradcam", "hirescam", "layercam", "eigencam", "scorecam", "ablationcam") + ILL_CONDITIONED
PER_CHANNEL = ("scorecam", "ablationcam")  # a forward per channel (1280 at _conv_head): on 64-px images


def maps_of(model, x, name, layer):
    """The method's map before the ReLU (at the layer) and after it (upsampled), as one vector."""
    att = attribute(model, x, name, 285, layer=layer)
    return torch.cat([att.raw.flatten(), att.maps.flatten()])


@pytest.mark.parametrize("layer", ["_conv_head", "_blocks.8._project_conv"])
def test_every_cam_runs_fused_at_a_conv_a_batch_norm_follows(embedded, chelsea, layer, monkeypatch):
    """The CAM methods read a folded convolution from the fused twin (its output mapped back through
    the batch norm, the gradient times the scale) and give the unfused network's maps."""
    embedded(chelsea)  # the twin for this network
    calls = []
    handle = embedded._twin[1].net.get_submodule(layer).register_forward_hook(lambda *a: calls.append(1))
    double = embedded.with_net(copy.deepcopy(embedded.net).double())
    double.mean, double.std = embedded.mean.double(), embedded.std.double()
    try:
        for name in CAMS:
            x = resize(chelsea, (64, 64) if name in PER_CHANNEL else (160, 160))
            before = len(calls)
            monkeypatch.setattr(embedded, "fuse", True)
            fused = maps_of(embedded, x, name, layer)
            assert len(calls) > before, name  # the twin's convolution ran
            monkeypatch.setattr(embedded, "fuse", False)
            before = len(calls)
            plain = maps_of(embedded, x, name, layer)
            assert len(calls) == before, name
            if name in ILL_CONDITIONED:
                exact = maps_of(double, x.double(), name, layer)
                assert relative_error(fused.double(), exact) <= 2 * relative_error(plain.double(), exact) + 1e-6, name
            else:
                assert relative_error(fused, plain) < TOLERANCE.get(name, 1e-5), name
    finally:
        handle.remove()
