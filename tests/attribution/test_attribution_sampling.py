"""RISE, LIME and KernelSHAP on models with known answers."""

import math

import pytest
import torch
from torch import nn

from synthviz.attribution.sampling import (
    kernelshap,
    lime,
    rise,
    rise_masks,
    shapley_coalitions,
    superpixels,
)
from synthviz.errors import SynthvizError
from synthviz.models import Model


def photo(size=48):
    import skimage.data

    from synthviz.io import resize, to_tensor

    return resize(to_tensor(skimage.data.chelsea()), (size, size))


class SuperpixelLinear(nn.Module):
    """Logit k = c_k + Σ_s w_ks · (mean of the image over superpixel s): linear in the superpixels."""

    def __init__(self, labels, classes=3):
        super().__init__()
        m = int(labels.max()) + 1
        onehot = torch.nn.functional.one_hot(labels, m).permute(2, 0, 1).float()  # (M, H, W)
        self.register_buffer("avg", onehot / onehot.sum((1, 2), keepdim=True) / 3)
        torch.manual_seed(0)
        self.fc = nn.Linear(m, classes)

    def forward(self, x):
        return self.fc(torch.einsum("bchw,mhw->bm", x, self.avg))


@pytest.fixture(scope="module")
def linear_case():
    x = photo()
    labels = superpixels(x[0], 20)
    net = SuperpixelLinear(labels)
    model = Model(net, mean=(0, 0, 0), std=(1, 1, 1))
    means = torch.einsum("bchw,mhw->bm", x, net.avg)[0]  # each superpixel's mean value
    true = net.fc.weight[1].detach() * means  # contribution of superpixel s to logit 1 (black fill)
    return model, x, labels, true


def per_segment(maps, labels):
    """The (constant) map value on each superpixel."""
    m = int(labels.max()) + 1
    return torch.stack([maps[0, 0][labels == s].mean() for s in range(m)])


def test_lime_recovers_the_weights_of_a_model_linear_in_the_superpixels(linear_case):
    model, x, labels, true = linear_case
    att = lime(model, x, torch.tensor([1]), samples=200, segments=20, baseline="black", ridge=0.0)
    assert att.maps.shape == (1, 1, 48, 48)
    assert torch.allclose(per_segment(att.maps, labels), true, rtol=1e-3, atol=1e-5)
    # lime's default ridge (α = 1) only shrinks them a little
    shrunk = per_segment(lime(model, x, torch.tensor([1]), samples=200, segments=20, baseline="black").maps, labels)
    assert torch.corrcoef(torch.stack([shrunk, true]))[0, 1] > 0.99


def test_kernelshap_recovers_shapley_values_of_a_linear_model(linear_case):
    model, x, labels, true = linear_case
    att = kernelshap(model, x, torch.tensor([1]), samples=100, segments=20, baseline="black")
    phi = per_segment(att.maps, labels)
    assert torch.allclose(phi, true, rtol=1e-3, atol=1e-5)
    with torch.no_grad():
        delta = model(x)[0, 1] - model(torch.zeros_like(x))[0, 1]
    assert torch.allclose(phi.sum(), delta, rtol=1e-4)  # efficiency


def test_shapley_coalitions_follow_the_kernel():
    gen = torch.Generator().manual_seed(0)
    z, w = shapley_coalitions(10, 20000, gen)
    assert z[0].sum() == 0 and z[1].sum() == 10 and w[0] == w[1] == 1e6 and (w[2:] == 1).all()
    sizes = z[2:].sum(1)
    k = torch.arange(1, 10, dtype=torch.float64)
    expected = (9 / (k * (10 - k))) / (9 / (k * (10 - k))).sum()
    observed = torch.stack([(sizes == s).double().mean() for s in k])
    assert (observed - expected).abs().max() < 0.01


class OneRegion(nn.Module):
    """Logit 0 = mean brightness of the top-left 8×8 block; nothing else matters."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return (self.scale * x[:, :, 4:12, 20:28].mean((1, 2, 3)))[:, None].repeat(1, 2)


def test_rise_puts_the_maximum_in_the_one_region_that_matters():
    model = Model(OneRegion(), mean=(0, 0, 0), std=(1, 1, 1))
    x = torch.ones(2, 3, 32, 32)
    att = rise(model, x, torch.tensor([0, 0]), samples=400, grid=4, batch_size=64)
    assert att.maps.shape == (2, 1, 32, 32)
    for i in range(2):
        flat = att.maps[i, 0].argmax()
        r, c = divmod(int(flat), 32)
        assert 4 <= r < 12 and 20 <= c < 28
        inside = att.raw[i, 0, 4:12, 20:28].mean()
        assert inside > att.raw[i, 0, 20:, :12].mean() * 1.2
    # the estimator: E[Σ s M / (N p)] at a pixel = E[s · M(pixel)] / p; the map's mean is about E[s]
    assert abs(att.raw.mean() - 0.5) < 0.1


def test_rise_masks_shapes_values_and_shift():
    gen = torch.Generator().manual_seed(0)
    m = rise_masks(300, (30, 20), 5, 0.3, gen)
    assert m.shape == (300, 1, 30, 20) and m.min() >= 0 and m.max() <= 1
    assert abs(m.mean() - 0.3) < 0.05


@pytest.mark.parametrize("method", [rise, lime, kernelshap])
def test_seeded_batched_and_batch_size_independent(method):
    model = Model(OneRegion(), mean=(0, 0, 0), std=(1, 1, 1))
    x = photo(32)
    t = torch.tensor([0])
    a = method(model, x, t, samples=40, batch_size=7, seed=3)
    b = method(model, x, t, samples=40, batch_size=40, seed=3)
    c = method(model, x, t, samples=40, batch_size=7, seed=4)
    assert torch.allclose(a.raw, b.raw, atol=1e-6)
    assert not torch.allclose(a.raw, c.raw)
    with pytest.raises(SynthvizError, match="samples"):
        method(model, x, t, samples=0)


def test_superpixels_fall_back_to_a_grid_on_noise():
    labels = superpixels(torch.rand(3, 40, 40), 16)
    assert labels.shape == (40, 40) and int(labels.max()) + 1 == 16


@pytest.mark.parametrize("method", ["deeplift", "lrp", "rise", "lime", "kernelshap"])
def test_sanity_check_runs_on_the_new_methods(method):
    """Cascading randomization of a toy CNN: each step gives a finite map and a correlation."""
    from synthviz.techniques.sanity import sanity

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 4))
    model = Model(net, classes=["a", "b", "c", "d"])
    options = {} if method in ("deeplift", "lrp") else {"samples": 24, "segments": 9}  # rise ignores segments
    res = sanity(model, photo(32), method=method, target=1, size=32, tile=32, **options)
    corrs = res.info["correlations"]
    assert corrs[0] == 1.0 and len(corrs) == len(res.info["layers"]) >= 3
    assert all(math.isfinite(c) for c in corrs)
