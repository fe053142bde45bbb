"""DeepLIFT (Rescale) and LRP against independent computations: closed forms, autograd, Captum, zennit."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import synthviz
from synthviz.attribution.core import make_baseline
from synthviz.attribution.deeplift import deeplift
from synthviz.attribution.lrp import lrp
from synthviz.models import Model


def snapshot(net):
    return ({k: v.clone() for k, v in net.state_dict().items()},
            [(m.training, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
             for m in net.modules()], [p.requires_grad for p in net.parameters()])


def unchanged(net, snap):
    state, flags, grads = snapshot(net)
    return (all(torch.equal(state[k], v) for k, v in snap[0].items()) and flags == snap[1] and grads == snap[2])


class Toy(nn.Module):
    """Conv-BN + one in-place ReLU module called twice, SiLU, hardswish, ReLU6 and a residual sum."""

    def __init__(self):
        super().__init__()
        self.c1, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.act = nn.ReLU(inplace=True)
        self.c2, self.c3 = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.six, self.fc = nn.ReLU6(inplace=True), nn.Linear(8, 5)

    def forward(self, x):
        x = self.act(self.bn(self.c1(x)))
        y = F.silu(self.act(self.c2(x))) + x
        y = self.six(3 * F.hardswish(self.c3(y)))
        return self.fc(y.mean((2, 3)))


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    net = Toy()
    net.bn.running_mean.normal_()
    net.bn.running_var.uniform_(0.5, 2)
    return Model(net)


@pytest.fixture(scope="module")
def lite0():
    return synthviz.load_model("efficientnet_lite0")


def photos(n, size):
    import skimage.data

    from synthviz.io import resize, to_tensor

    return torch.cat([resize(to_tensor(getattr(skimage.data, k)()), (size, size)) for k in ("chelsea", "coffee")][:n])


# --------------------------------------------------------------------------- DeepLIFT

@pytest.mark.parametrize("baseline", ["black", "white", "blurred", "tensor"])
def test_deeplift_summation_to_delta_toy(toy, baseline):
    torch.manual_seed(1)
    x = torch.rand(3, 3, 16, 16)
    base = torch.rand(3, 16, 16) if baseline == "tensor" else baseline
    snap = snapshot(toy.net)
    att = deeplift(toy, x, torch.tensor([0, 2, 4]), baseline=base)
    with torch.no_grad():
        b = make_baseline(base, x)
        delta = toy(x).gather(1, torch.tensor([[0], [2], [4]]))[:, 0] - toy(b).gather(1, torch.tensor([[0], [2], [4]]))[:, 0]
    total = att.raw.flatten(1).sum(1)
    assert torch.allclose(total, delta, rtol=1e-3, atol=1e-6)
    assert att.maps.shape == (3, 1, 16, 16)
    assert att.info["rescaled"] == 5  # the reused in-place ReLU counts twice, SiLU, hardswish, ReLU6
    assert unchanged(toy.net, snap)


def test_deeplift_summation_to_delta_lite0(lite0):
    x = photos(2, 64)
    snap = snapshot(lite0.net)
    att = deeplift(lite0, x, torch.tensor([285, 967]))
    with torch.no_grad():
        t = torch.tensor([[285], [967]])
        delta = lite0(x).gather(1, t)[:, 0] - lite0(torch.zeros_like(x)).gather(1, t)[:, 0]
    assert torch.allclose(att.raw.flatten(1).sum(1), delta, rtol=1e-3, atol=1e-4)
    assert max(att.info["relative_gap"]) < 1e-3
    assert att.info["rescaled"] == 33  # every ReLU6 call of the network
    assert unchanged(lite0.net, snap)


class OneUnit(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.a, self.b, self.act = nn.Linear(12, 1), nn.Linear(1, 1), act

    def forward(self, x):
        return self.b(self.act(self.a(x.flatten(1))))


@pytest.mark.parametrize("act", [F.relu, F.relu6, F.silu, F.hardswish, torch.tanh])
def test_deeplift_rescale_multiplier_closed_form(act):
    """One hidden unit: attribution = (x − x′) · w · v · (f(z) − f(z′)) / (z − z′)."""
    torch.manual_seed(2)
    net = OneUnit(act)
    m = Model(net, mean=(0, 0, 0), std=(1, 1, 1))
    x, base = torch.rand(1, 3, 2, 2) * 4, torch.rand(1, 3, 2, 2)
    att = deeplift(m, x, torch.tensor([0]), baseline=base[0])
    w, v = net.a.weight.view(1, 3, 2, 2), net.b.weight.item()
    z, z0 = net.a(x.flatten(1)).item(), net.a(base.flatten(1)).item()
    mult = (act(torch.tensor(z)) - act(torch.tensor(z0))).item() / (z - z0)
    assert torch.allclose(att.raw, (x - base) * w * v * mult, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("act", [F.silu, F.relu6])
def test_deeplift_falls_back_to_the_gradient_where_the_unit_does_not_move(act):
    """z = x₀ − x₁ + 0.3 is the same on input and reference although both pixels change: the
    multiplier is then f′(0.3), so the attributions are ±Δx · f′(0.3) · v."""
    net = OneUnit(act)
    with torch.no_grad():
        net.a.weight.zero_()
        net.a.bias.fill_(0.3)
        net.a.weight[0, 0], net.a.weight[0, 1] = 1.0, -1.0
    m = Model(net, mean=(0, 0, 0), std=(1, 1, 1))
    x, base = torch.full((1, 3, 2, 2), 0.7), torch.full((1, 3, 2, 2), 0.2)
    att = deeplift(m, x, torch.tensor([0]), baseline=base)
    z = torch.tensor(0.3, requires_grad=True)
    (slope,) = torch.autograd.grad(act(z), z)
    expected = 0.5 * slope * net.b.weight.item()
    flat = att.raw.flatten()
    assert torch.allclose(flat[:2], torch.stack([expected, -expected]), rtol=1e-5)
    assert flat[2:].abs().max() == 0


def test_deeplift_matches_captum():
    captum = pytest.importorskip("captum.attr")
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3), nn.Sigmoid(), nn.Conv2d(6, 4, 3), nn.Tanh(),
                        nn.Flatten(), nn.Linear(4 * 10 * 10, 3))
    m = Model(net, mean=(0, 0, 0), std=(1, 1, 1))
    x, base = torch.rand(2, 3, 16, 16), torch.rand(1, 3, 16, 16)
    ours = deeplift(m, x, torch.tensor([0, 2]), baseline=base)
    theirs = captum.DeepLift(net).attribute(x, base.expand(2, -1, -1, -1), target=torch.tensor([0, 2]))
    assert torch.allclose(ours.raw, theirs, rtol=1e-3, atol=1e-6)


# --------------------------------------------------------------------------- LRP

class Residual(nn.Module):
    """A bias-free ReLU network with a residual sum (``+`` or ResNet's in-place ``+=``) and average pooling."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.c1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.fc = nn.Linear(6, 4, bias=False)

    def forward(self, x):
        x = F.relu(self.c1(x))
        if self.inplace:  # as in torchvision's ResNet blocks
            y = self.c2(x)
            y += x
            x = F.relu(y, inplace=True)
        else:
            x = F.relu(self.c2(x)) + x
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def grad_x_input(m, x, t):
    """Gradient × input in the network's (normalised) input space, by plain autograd."""
    leaf = m.normalize(x).requires_grad_(True)
    score = m.net(leaf).gather(1, t[:, None])[:, 0]
    (g,) = torch.autograd.grad(score.sum(), leaf)
    return g * leaf.detach(), score.detach()


@pytest.mark.parametrize("inplace", [False, True])
def test_lrp_z_rule_conserves_and_equals_grad_x_input_on_a_bias_free_relu_net(inplace):
    torch.manual_seed(4)
    m = Model(Residual(inplace))
    x, t = torch.rand(2, 3, 12, 12), torch.tensor([1, 3])
    att = lrp(m, x, t, composite="epsilon", epsilon=0.0)
    gxi, score = grad_x_input(m, x, t)
    assert torch.allclose(att.raw.flatten(1).sum(1), score, rtol=1e-4, atol=1e-6)
    # equal up to float rounding (amplified where a sum a + b nearly cancels)
    assert (att.raw - gxi).norm() < 1e-4 * gxi.norm()
    assert att.info["sums"] == 1 and att.info["pools"] == 1


def test_lrp_equals_grad_x_input_on_a_linear_model():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    m = Model(net)
    x, t = torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 4])
    att = lrp(m, x, t, composite="epsilon", epsilon=0.0)
    gxi, score = grad_x_input(m, x, t)
    assert torch.allclose(att.raw, gxi, rtol=1e-4, atol=1e-4 * gxi.abs().max())
    # the bias keeps its share: Σ relevance = score − bias
    assert torch.allclose(torch.tensor(att.info["relevance_sum"]), score - net[1].bias.detach()[t], rtol=1e-4)


def vgg_like():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5))
    for mod in net.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 2)
            mod.weight.data.normal_()
            mod.bias.data.normal_(0, 0.1)
    return net


@pytest.mark.parametrize("composite", ["epsilon_gamma_box", "epsilon_plus"])
def test_lrp_matches_zennit_with_merged_batch_norm(composite):
    zc = pytest.importorskip("zennit.composites")
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm

    net = vgg_like()
    m = Model(net)
    x, t = torch.rand(2, 3, 16, 16), torch.tensor([1, 3])
    snap = snapshot(net)
    ours = lrp(m, x, t, composite=composite)
    assert unchanged(net, snap)
    assert ours.info["merged_batch_norms"] == 2
    xn = m.normalize(x)
    low, high = m.normalize(torch.zeros(1, 3, 1, 1)), m.normalize(torch.ones(1, 3, 1, 1))
    comp = (zc.EpsilonGammaBox(low=low, high=high, canonizers=[SequentialMergeBatchNorm()])
            if composite == "epsilon_gamma_box" else zc.EpsilonPlus(canonizers=[SequentialMergeBatchNorm()]))
    with torch.no_grad():
        score = net(xn).gather(1, t[:, None])
    with Gradient(model=net, composite=comp) as attributor:
        _, theirs = attributor(xn.clone().requires_grad_(True), torch.eye(5)[t] * score)
    # zennit runs the merged conv forward, we the real batch norm: float differences, amplified where
    # a stabilised denominator is near 0, leave ~0.1% (0 without batch norms)
    assert (ours.raw - theirs).norm() < 5e-3 * theirs.norm()


def test_lrp_on_lite0_merges_batch_norms_splits_residuals_and_leaves_the_model(lite0):
    x = photos(1, 64)
    snap = snapshot(lite0.net)
    att = lrp(lite0, x, torch.tensor([285]))
    assert unchanged(lite0.net, snap)
    assert att.maps.shape == (1, 1, 64, 64) and torch.isfinite(att.maps).all()
    info = att.info
    assert info["first_rule"] == "zbox"  # the stem's same-padding is followed to the input bounds
    assert info["merged_batch_norms"] == info["layers"] - 1  # every conv has a BN; the classifier has none
    assert info["sums"] == 9 and info["pools"] == 1
    # the z-rule with merged batch norms: relevance conserved up to what the biases absorb
    z = lrp(lite0, x, torch.tensor([285]), composite="epsilon", epsilon=0.0)
    assert torch.isfinite(z.raw).all()


def test_lrp_unknown_composite_is_a_one_line_error(toy):
    with pytest.raises(synthviz.errors.SynthvizError, match="epsilon_gamma_box"):
        lrp(toy, torch.rand(1, 3, 8, 8), torch.tensor([0]), composite="gama")
