"""The fused twin (synthviz.fusion): batch norms folded into their convolutions, channels-last.
It must compute what the original computes, follow every change to the original, and step aside
whenever a caller needs the original's own modules."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from synthviz.layers import Tap
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
