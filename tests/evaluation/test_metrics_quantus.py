"""Every registered metric against Quantus 0.6 on the same tiny CNN, images, maps and arguments
(issue 31): deterministic metrics to 1e-4, stochastic ones within the spread of repeated runs.
Where Quantus 0.6 has a bug, the documented behaviour is tested against its formula instead.

Quantus is called one image at a time where it normalises a whole batch by one maximum (an
image's score here never depends on its batch), and with ``np.trapz`` restored (numpy 2.4
removed it; Quantus 0.6 still calls it)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synthviz.errors import BadValue, SynthvizError
from synthviz.evaluation import metric_info, score
from synthviz.evaluation.metrics import METRICS, names
from synthviz.models import Model
from synthviz.targets import class_index

quantus = pytest.importorskip("quantus")

SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/evaluation/conftest.py


@pytest.fixture(autouse=True)
def _quantus_on_numpy2(monkeypatch):
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    warnings.filterwarnings("ignore", module="quantus")


class Net(nn.Module):
    """A tiny CNN: ``channels`` in, 10 classes; ``pad=False``: the first convolution unpadded."""

    def __init__(self, channels: int = 3, pad: bool = True, seed: int = 6):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(channels, 8, 3, padding=int(pad))
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)
        nn.init.normal_(self.fc.weight, std=2.0)

    def forward(self, x):
        return self.fc(self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x))))).flatten(1))


def model_of(net: nn.Module) -> Model:
    """The network as a synthviz Model reading its input as it is (Quantus gets the bare network)."""
    c = net.conv1.in_channels if hasattr(net, "conv1") else 3
    return Model(net, mean=(0.0,) * c, std=(1.0,) * c, classes=[f"c{i}" for i in range(10)], name="tiny", min_size=8)


def smooth(b: int, c: int, seed: int, size: int = SIZE) -> torch.Tensor:
    """(b, c, size, size) smooth random values in [0, 1]: upsampled 8×8 noise over a random tint
    (the tint makes the tiny net's predictions differ between images)."""
    gen = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.rand(b, c, 8, 8, generator=gen), size=(size, size), mode="bilinear",
                         align_corners=False)
    return 0.5 * base + 0.5 * torch.rand(b, c, 1, 1, generator=gen)


def signed_maps(b: int, seed: int, size: int = SIZE) -> torch.Tensor:
    """(b, 1, size, size) smooth maps of both signs (upsampled 8×8 noise − 0.5)."""
    gen = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(b, 1, 8, 8, generator=gen) - 0.5, size=(size, size), mode="bilinear",
                         align_corners=False)


def grad_map(f, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of the class logit summed over colour (= quantus.explain(method="Gradient")), (B, 1, H, W)."""
    x = torch.as_tensor(x).float().clone().requires_grad_(True)
    with torch.enable_grad():
        out = f(x)
        (g,) = torch.autograd.grad(out.gather(1, torch.as_tensor(y).long().view(-1, 1)).sum(), x)
    return g.sum(1, keepdim=True).detach()


def ours_explain(model, x, classes):
    return grad_map(model, x, classes)


def quantus_explain(model, inputs, targets, **kwargs):
    return grad_map(model, inputs, targets).numpy()


@pytest.fixture(scope="module")
def setup():
    """Net, Model, images (2, 3, 32, 32), predicted classes, signed smooth maps, box masks."""
    net = Net().eval()
    model = model_of(net)
    x = smooth(2, 3, seed=1)
    with torch.no_grad():
        y = net(x).argmax(1)
    a = signed_maps(2, seed=2)
    s = torch.zeros(2, 1, SIZE, SIZE)
    s[0, :, 4:14, 6:20] = 1
    s[1, :, 16:30, 10:26] = 1
    return net, model, x, y, a, s


def q_call(metric, net, x, y, a, s=None, per_image=True, **kw):
    """Quantus's scores as a float64 array (one image per call when ``per_image``)."""
    def one(sl):
        return metric(model=net, x_batch=x[sl].numpy(), y_batch=y[sl].numpy(), a_batch=a[sl].numpy(),
                      s_batch=None if s is None else s[sl].numpy(), **kw)

    if not per_image:
        return np.asarray(one(slice(None)), dtype=np.float64)
    return np.concatenate([np.atleast_1d(np.asarray(one(slice(i, i + 1)), dtype=np.float64)) for i in range(len(x))])


def close(ours: torch.Tensor, theirs, tol: float = 1e-4):
    theirs = np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=tol, atol=tol, equal_nan=True)


def same_spread(ours: np.ndarray, theirs: np.ndarray):
    """Runs (K, B) of two stochastic implementations agree: per image, the means differ by no more
    than 3 standard errors of the difference (plus a little for ties)."""
    diff = np.abs(ours.mean(0) - theirs.mean(0))
    err = np.sqrt(ours.var(0, ddof=1) / len(ours) + theirs.var(0, ddof=1) / len(theirs))
    assert np.all(diff <= 3 * err + 1e-6), (ours, theirs)


# ---------------------------------------------------------------------------- complexity, localisation


@pytest.mark.parametrize("name, cls, kw", [
    ("sparseness", "Sparseness", {}), ("complexity", "Complexity", {}),
    ("effective_complexity", "EffectiveComplexity", {"eps": 0.05}),
])
def test_complexity_equals_quantus(setup, name, cls, kw):
    net, model, x, y, a, s = setup
    relu = a.clamp(min=0)  # zeros make effective complexity meaningful
    ours = score(None, x, relu, metric=name, **kw)
    close(ours, q_call(getattr(quantus, cls)(**kw), None, x, y, relu))


@pytest.mark.parametrize("name, cls, kw", [
    ("pointing_game", "PointingGame", {}), ("attribution_localisation", "AttributionLocalisation", {}),
    ("top_k_intersection", "TopKIntersection", {"k": 100}),
    ("top_k_intersection", "TopKIntersection", {"k": 100, "concept_influence": True}),
    ("relevance_rank_accuracy", "RelevanceRankAccuracy", {}),
    ("relevance_mass_accuracy", "RelevanceMassAccuracy", {}), ("auc", "AUC", {}),
    ("attribution_localisation", "AttributionLocalisation", {"positive_attributions": True, "abs": False}),
])
def test_localisation_equals_quantus(setup, name, cls, kw):
    net, model, x, y, a, s = setup
    ours = score(None, x, a, masks=s, metric=name, **kw)
    close(ours, q_call(getattr(quantus, cls)(**kw), None, x, y, a, s, per_image=False))


def test_focus_equals_quantus(setup):
    net, model, x, y, a, s = setup
    labels = np.array([[1, 0, 0, 1], [0, 1, 1, 0]])
    ours = score(None, x, a, metric="focus", mosaic_labels=labels)
    theirs = quantus.Focus()(model=net, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), custom_batch=labels)
    close(ours, theirs)


def test_weighted_localisation_follows_the_documented_formula(setup):
    """Quantus 0.6 fails (pointing game) or divides by x_batch[2:].size (attribution localisation)."""
    net, model, x, y, a, s = setup
    share = s.flatten(1).mean(1).double()
    plain = score(None, x, a, masks=s, metric="pointing_game")
    close(score(None, x, a, masks=s, metric="pointing_game", weighted=True), (plain * (1 - share)).numpy())
    ratio = score(None, x, a, masks=s, metric="attribution_localisation")
    close(score(None, x, a, masks=s, metric="attribution_localisation", weighted=True), (ratio * share).numpy())
    with pytest.raises(TypeError):  # the bug, so this test notices when Quantus fixes it
        quantus.PointingGame(weighted=True)(model=None, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(),
                                            s_batch=s.numpy())


def test_energy_pointing_game_formula():
    """Wang et al. 2020: positive energy inside the box over the total positive energy."""
    a = torch.zeros(1, 1, 4, 4)
    a[0, 0, 0, 0], a[0, 0, 3, 3], a[0, 0, 1, 1] = 3.0, 1.0, -5.0
    box = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    box[0, 0, :2, :2] = True
    assert score(None, torch.rand(1, 3, 4, 4), a, masks=box, metric="energy_pointing_game").item() == pytest.approx(0.75)
    assert torch.isnan(score(None, torch.rand(1, 3, 4, 4), a, masks=box & False, metric="energy_pointing_game")).all()


# ---------------------------------------------------------------------------- faithfulness


def test_faithfulness_estimate_and_pixel_flipping_equal_quantus(setup):
    net, model, x, y, a, s = setup
    ours = score(model, x, a, y, metric="faithfulness_estimate", features_in_step=64)
    close(ours, q_call(quantus.FaithfulnessEstimate(features_in_step=64), net, x, y, a))
    ours = score(model, x, a, y, metric="pixel_flipping", features_in_step=32)
    close(ours, q_call(quantus.PixelFlipping(features_in_step=32, return_auc_per_sample=True), net, x, y, a), 1e-4)
    ours = score(model, x, a, y, metric="pixel_flipping", features_in_step=32, perturb_baseline="mean")
    theirs = q_call(quantus.PixelFlipping(features_in_step=32, perturb_baseline="mean", return_auc_per_sample=True),
                    net, x, y, a)
    close(ours, theirs)  # Quantus's mean of the image as perturbed so far, reproduced


@pytest.mark.parametrize("kw", [{"patch_size": 8, "regions_evaluation": 10},
                                {"patch_size": 6, "order": "lerf", "regions_evaluation": 12}])
def test_region_perturbation_equals_quantus(setup, kw):
    net, model, x, y, a, s = setup
    ours = score(model, x, a, y, metric="region_perturbation", **kw)
    curves = q_call(quantus.RegionPerturbation(**kw), net, x, y, a, per_image=False)
    close(ours, np.trapezoid(curves, axis=1))


def test_selectivity_equals_quantus(setup):
    net, model, x, y, a, s = setup
    ours = score(model, x, a, y, metric="selectivity", patch_size=8)
    curves = q_call(quantus.Selectivity(patch_size=8), net, x, y, a, per_image=False)
    close(ours, np.trapezoid(curves, axis=1))


@pytest.fixture(scope="module")
def grey():
    """A one-channel net and images: Quantus 0.6's IROF and ROAD fail on colour images."""
    net = Net(channels=1, seed=3).eval()
    x = smooth(2, 1, seed=4)
    with torch.no_grad():
        y = net(x).argmax(1)
    return net, model_of(net), x, y, signed_maps(2, seed=5) + 0.1


def test_irof_equals_quantus_on_grey_images(grey):
    net, model, x, y, a = grey
    ours = score(model, x, a, y, metric="irof")
    close(ours, q_call(quantus.IROF(return_aggregate=False), net, x, y, a))


def test_road_equals_quantus_within_spread(grey):
    net, model, x, y, a = grey
    pct = [10, 30, 50, 70, 90]
    ours = np.stack([score(model, x, a, y, metric="road", percentages=pct, noise=0.05, seed=k).numpy()
                     for k in range(4)])
    theirs = []
    for k in range(4):
        np.random.seed(k)
        theirs.append([np.mean(list(quantus.ROAD(percentages=pct, noise=0.05)(
            model=net, x_batch=x[i:i + 1].numpy(), y_batch=y[i:i + 1].numpy(), a_batch=a[i:i + 1].numpy()).values()))
            for i in range(len(x))])
    same_spread(ours, np.asarray(theirs))


def test_faithfulness_correlation_within_spread(setup):
    net, model, x, y, a, s = setup
    kw = {"nr_runs": 20, "subset_size": 64}
    ours = np.stack([score(model, x, a, y, metric="faithfulness_correlation", seed=k, **kw).numpy() for k in range(5)])
    theirs = []
    for k in range(5):
        np.random.seed(k)
        theirs.append(q_call(quantus.FaithfulnessCorrelation(return_aggregate=False, **kw), net, x, y, a))
    same_spread(ours, np.asarray(theirs))


def test_monotonicity_correlation_within_spread(setup):
    net, model, x, y, a, s = setup
    kw = {"nr_samples": 4, "features_in_step": 256}
    ours = np.stack([score(model, x, a, y, metric="monotonicity_correlation", seed=k, **kw).numpy()
                     for k in range(4)])
    theirs = []
    for k in range(4):
        np.random.seed(k)
        theirs.append(q_call(quantus.MonotonicityCorrelation(**kw), net, x, y, a))
    same_spread(ours, np.asarray(theirs))


def test_sufficiency_and_consistency_equal_quantus():
    """Batch-level metrics: the whole batch on both sides (maps close to each other, classes mixed)."""
    net = Net(seed=6).eval()
    x = smooth(6, 3, seed=7)
    with torch.no_grad():
        y = net(x).argmax(1)
    a = signed_maps(6, seed=8)
    a[:3] = a[0] + 0.01 * a[:3]  # three near-identical maps
    model = model_of(net)
    close(score(model, x, a, y, metric="sufficiency"), q_call(quantus.Sufficiency(), net, x, y, a, per_image=False))
    close(score(model, x, a, y, metric="consistency", discretise_func="sign", abs=False),
          q_call(quantus.Consistency(discretise_func=quantus.functions.discretise_func.sign, abs=False),
                 net, x, y, a, per_image=False))


class Linear(nn.Module):
    """Logit k = Σ w_k · x: an attribution w ⊙ (x − x̄) sums exactly to f(x) − f(x̄)."""

    def __init__(self, positive: bool, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        w = torch.rand(10, 3 * 16 * 16, generator=gen)
        self.register_buffer("w", w if positive else w - 0.5)

    def forward(self, x):
        return x.flatten(1) @ self.w.T


def _linear_case(positive: bool):
    net = Linear(positive)
    x = smooth(2, 3, seed=9, size=16)
    y = torch.tensor([2, 5])
    base = x.flatten(1).amin(1).view(-1, 1, 1, 1)  # Quantus's "black": the image's minimum
    exact = net.w[y].view(2, 3, 16, 16) * (x - base)
    return net, model_of(net), x, y, exact


def test_correlation_metrics_are_one_for_an_exact_attribution():
    """Sensitivity-n as documented (Quantus 0.6 correlates across images instead) and faithfulness
    correlation: on a linear model the exact attribution sums to every drop."""
    net, model, x, y, exact = _linear_case(positive=False)
    for name, kw in [("sensitivity_n", {"features_in_step": 64, "nr_samples": 6, "n_max_percentage": 0.5}),
                     ("faithfulness_correlation", {"nr_runs": 10, "subset_size": 40})]:
        np.testing.assert_allclose(score(model, x, exact, y, metric=name, softmax=False, normalise=False, **kw), 1,
                                   atol=1e-4)
        noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        assert score(model, x, noise, y, metric=name, softmax=False, **kw).abs().max() < 0.8


def test_monotonicity_reveals_features_as_documented():
    """Arya et al.: revealing features of positive contribution never lowers the logit. Quantus 0.6
    writes the baseline over the baseline and returns 1 for any map."""
    for positive, expected in [(True, 1.0), (False, 0.0)]:
        net, model, x, y, exact = _linear_case(positive)
        ours = score(model, x, exact, y, metric="monotonicity", features_in_step=16, softmax=False, abs=False)
        assert ours.tolist() == [expected] * 2
        theirs = quantus.Monotonicity(features_in_step=16, abs=False)(
            model=net, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=exact.numpy(), softmax=False)
        assert list(theirs) == [True, True]  # the bug, so this test notices when Quantus fixes it


def test_completeness():
    net, model, x, y, exact = _linear_case(positive=False)
    assert score(model, x, exact, y, metric="completeness", normalise=False, atol=1e-3).tolist() == [1.0, 1.0]
    assert score(model, x, exact * 1.1, y, metric="completeness", normalise=False, atol=1e-3).tolist() == [0.0, 0.0]
    close(score(model, x, exact, y, metric="completeness"),
          q_call(quantus.Completeness(), net, x, y, exact))  # exact equality: 0 after normalisation


def test_non_sensitivity_equals_quantus(setup):
    net, model, x, y, a, s = setup
    a = a.clamp(min=0)
    close(score(model, x[:1], a[:1], y[:1], metric="non_sensitivity", eps=1e-3),
          q_call(quantus.NonSensitivity(eps=1e-3), net, x[:1], y[:1], a[:1]))


def test_deletion_and_insertion_canvases(setup):
    """RISE's defaults: deletion to black, insertion from the blurred image. With one step the area
    is the mean of the probability on the image and on the canvas."""
    from synthviz.evaluation.curves import blurred

    net, model, x, y, a, s = setup
    with torch.no_grad():
        p = lambda z: net(z).softmax(1).gather(1, y[:, None])[:, 0].double()  # noqa: E731
    close(score(model, x, a, y, metric="deletion", steps=1), ((p(x) + p(torch.zeros_like(x))) / 2).numpy(), 1e-5)
    close(score(model, x, a, y, metric="insertion", steps=1), ((p(x) + p(blurred(x))) / 2).numpy(), 1e-5)
    mean = x.mean((2, 3), keepdim=True).expand_as(x)
    close(score(model, x, a, y, metric="deletion", steps=1, canvas="mean"), ((p(x) + p(mean)) / 2).numpy(), 1e-5)


# ---------------------------------------------------------------------------- robustness


def _runs(metric, model, net, x, y, a, qcls, runs=3, **kw):
    ours = np.stack([score(model, x, a, y, metric=metric, explain=ours_explain, seed=k, **kw).numpy()
                     for k in range(runs)])
    theirs = []
    for k in range(runs):
        np.random.seed(k)
        theirs.append(q_call(qcls(**kw), net, x, y, a, explain_func=quantus_explain))
    return ours, np.asarray(theirs)


@pytest.mark.parametrize("metric, cls, kw", [
    ("max_sensitivity", "MaxSensitivity", {"nr_samples": 8, "lower_bound": 0.05}),
    ("local_lipschitz_estimate", "LocalLipschitzEstimate", {"nr_samples": 8, "perturb_std": 0.05}),
])
def test_robustness_within_spread(setup, metric, cls, kw):
    net, model, x, y, a, s = setup
    a = grad_map(net, x, y)  # the maps the explain function draws, as these metrics assume
    same_spread(*_runs(metric, model, net, x, y, a, getattr(quantus, cls), **kw))


def shared_noise(seed: int, samples: int, x: torch.Tensor, low=None, high=None, mean=None, std=None) -> np.ndarray:
    """(samples, B, N): the noise synthviz draws (one seeded generator, copies sample by sample)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (samples * len(x), *x.shape[1:])
    z = low + (high - low) * torch.rand(shape, generator=gen) if std is None else mean + std * torch.randn(
        shape, generator=gen)
    return z.view(samples, len(x), -1).numpy()


@pytest.mark.parametrize("metric, cls, kw, noise", [
    ("max_sensitivity", "MaxSensitivity", {"lower_bound": 0.05}, {"low": -0.05, "high": 0.05}),
    ("avg_sensitivity", "AvgSensitivity", {"lower_bound": 0.05}, {"low": -0.05, "high": 0.05}),
    ("local_lipschitz_estimate", "LocalLipschitzEstimate", {"perturb_std": 0.05}, {"mean": 0.0, "std": 0.05}),
    ("relative_input_stability", "RelativeInputStability", {}, {"low": 0.02, "high": 0.2}),
    ("relative_output_stability", "RelativeOutputStability", {}, {"low": 0.02, "high": 0.2}),
    ("relative_representation_stability", "RelativeRepresentationStability", {}, {"low": 0.02, "high": 0.2}),
])
def test_robustness_equals_quantus_on_the_same_noise(setup, metric, cls, kw, noise):
    """Quantus given synthviz's own draws as its ``perturb_func``: equal to 1e-4 (NaN where a
    perturbation changes the prediction, the relative stabilities' default)."""
    net, model, x, y, a, s = setup
    a = grad_map(net, x, y)
    n = 6
    bounds = {"lower_bound": noise["low"], "upper_bound": noise["high"]} if "stability" in metric else {}
    ours = score(model, x, a, y, metric=metric, explain=ours_explain, nr_samples=n, seed=3, **kw, **bounds)
    z = shared_noise(3, n, x, **noise)
    theirs = []
    for i in range(len(x)):
        calls = iter(range(n))
        perturb = lambda arr, **k: arr + z[next(calls), i]  # noqa: E731
        theirs += list(getattr(quantus, cls)(nr_samples=n, perturb_func=perturb, **kw)(
            model=net, x_batch=x[i:i + 1].numpy(), y_batch=y[i:i + 1].numpy(), a_batch=a[i:i + 1].numpy(),
            explain_func=quantus_explain))
    if "stability" in metric:
        assert np.isnan(theirs).tolist() == [False, True]  # the second image's prediction changes
    close(ours, theirs)


class Blocks(nn.Module):
    """:class:`Net`'s layers held in a ``ModuleList``, as EfficientNet's blocks: the list itself is
    never called (Quantus's hook on it never fires; synthviz leaves it out)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.blocks = nn.ModuleList([nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                                     nn.ReLU()])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)
        nn.init.normal_(self.fc.weight, std=2.0)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.fc(self.pool(x).flatten(1))


def test_representation_stability_with_a_module_list_equals_quantus(setup):
    _, _, x, _, _, _ = setup
    net = Blocks().eval()
    model = model_of(net)
    with torch.no_grad():
        y = net(x).argmax(1)
    a = grad_map(net, x, y)
    n = 4
    kw = {"nr_samples": n, "return_nan_when_prediction_changes": False}
    ours = score(model, x, a, y, metric="relative_representation_stability", explain=ours_explain, seed=3, **kw)
    z = shared_noise(3, n, x, low=0.02, high=0.2)
    theirs = []
    for i in range(len(x)):
        calls = iter(range(n))
        perturb = lambda arr, **k: arr + z[next(calls), i]  # noqa: E731
        theirs += list(quantus.RelativeRepresentationStability(perturb_func=perturb, **kw)(
            model=net, x_batch=x[i:i + 1].numpy(), y_batch=y[i:i + 1].numpy(), a_batch=a[i:i + 1].numpy(),
            explain_func=quantus_explain))
    close(ours, theirs)


def test_continuity_equals_quantus(setup):
    net, model, x, y, a, s = setup
    a = grad_map(net, x, y)
    ours = score(model, x, a, y, metric="continuity", nr_steps=10, explain=ours_explain)
    close(ours, q_call(quantus.Continuity(nr_steps=10), net, x, y, a, explain_func=quantus_explain), 1e-3)


# ---------------------------------------------------------------------------- randomisation, axiomatic


@pytest.mark.parametrize("kw", [{}, {"layer_order": "bottom_up"}, {"layer_order": "independent"}])
def test_mprt_equals_quantus(setup, kw):
    net, model, x, y, a, s = setup
    ours = score(model, x, a, y, metric="mprt", explain=ours_explain, **kw)
    theirs = q_call(quantus.MPRT(return_last_correlation=True, **kw), net, x, y, a, explain_func=quantus_explain)
    close(ours, theirs)


def test_mprt_average_skips_the_original(setup):
    """Quantus 0.6 averages in the "original" entry (it skips a key named "orig")."""
    net, model, x, y, a, s = setup
    ours = score(model, x, a, y, metric="mprt", explain=ours_explain, return_average_correlation=True)
    layers = quantus.MPRT()(model=net, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(),
                            explain_func=quantus_explain, batch_size=1)
    del layers["original"]
    close(ours, np.mean(list(layers.values()), axis=0))


def test_smooth_and_efficient_mprt_equal_quantus(setup):
    net, model, x, y, a, s = setup
    kw = {"nr_samples": 3, "noise_magnitude": 0.0, "return_last_correlation": True}  # noiseless: exact
    theirs = q_call(quantus.SmoothMPRT(**kw), net, x, y, a, explain_func=quantus_explain,
                    explain_func_kwargs={"method": "Gradient"})
    kw.pop("return_last_correlation")
    close(score(model, x, a, y, metric="smooth_mprt", explain=ours_explain, **kw), theirs)
    theirs = q_call(quantus.EfficientMPRT(), net, x, y, a, explain_func=quantus_explain)
    close(score(model, x, a, y, metric="efficient_mprt", explain=ours_explain), theirs)
    # the model's own maps given (what `evaluate` does): the same score with one explanation fewer
    own = grad_map(net, x, y)
    close(score(model, x, own, y, metric="efficient_mprt", explain=ours_explain, original="maps"), theirs)
    assert not np.allclose(score(model, x, a, y, metric="efficient_mprt", explain=ours_explain, original="maps"),
                           theirs, atol=1e-3)  # other maps given: they are read


def test_the_randomised_copy_is_made_once_per_network_and_again_when_its_weights_change(setup):
    from synthviz.evaluation.metrics.randomisation import fully_randomised

    net, model, x, y, a, s = setup
    mine = model.copy()
    before = [p.detach().clone() for p in mine.net.parameters()]
    first = fully_randomised(mine, "bottom_up", 42)
    assert fully_randomised(mine, "bottom_up", 42) is first  # batch after batch: re-initialised once
    assert fully_randomised(mine, "top_down", 42) is not first
    assert all(torch.equal(p, q) for p, q in zip(before, mine.net.parameters()))  # the model itself untouched
    assert mine.copy().__dict__.get("_randomised") is None  # a copy is another network
    with torch.no_grad():
        next(mine.net.parameters()).add_(1.0)  # the user trains on: the kept copy is stale
    assert fully_randomised(mine, "bottom_up", 42) is not first


def test_random_logit_equals_quantus(setup):
    net, model, x, y, a, s = setup
    ours = score(model, x, a, y, metric="random_logit", explain=ours_explain, num_classes=10, normalise=False)
    theirs = q_call(quantus.RandomLogit(num_classes=10, normalise=False), net, x, y, a, per_image=False,
                    explain_func=quantus_explain)  # the whole batch: one draw of off-classes per batch
    close(ours, theirs)


def test_input_invariance():
    """Kindermans et al.: the gradient is invariant to a compensated input shift, gradient × input is
    not (Quantus agrees on the latter). Quantus 0.6 leaves the first value of each image unshifted
    (``perturb_batch`` drops ``indices[0]``), so its verdict on the gradient depends on that pixel."""
    import functools

    from quantus.functions.perturb_func import baseline_replacement_by_shift, perturb_batch

    net = Net(pad=False, seed=11).eval()  # Quantus folds the shift into the first bias only
    model = model_of(net)
    x = smooth(2, 3, seed=12)
    with torch.no_grad():
        y = net(x).argmax(1)

    def grad_x_input(m, z, c):
        return grad_map(m, z, c) * z.sum(1, keepdim=True)

    a = grad_map(net, x, y)
    assert score(model, x, a, y, metric="input_invariance", explain=ours_explain).tolist() == [1.0, 1.0]
    a = grad_x_input(net, x, y)
    assert score(model, x, a, y, metric="input_invariance", explain=grad_x_input).tolist() == [0.0, 0.0]
    theirs = q_call(quantus.InputInvariance(), net, x, y, a,
                    explain_func=lambda model, inputs, targets, **k: grad_x_input(model, torch.as_tensor(inputs),
                                                                                  torch.as_tensor(targets)).numpy())
    assert theirs.tolist() == [0.0, 0.0]
    shifted = perturb_batch(perturb_func=functools.partial(baseline_replacement_by_shift, input_shift=-1),
                            indices=np.tile(np.arange(x[0].numel()), (2, 1)), indexed_axes=np.arange(3), arr=x.numpy())
    wrong = np.argwhere(np.abs(shifted - (x.numpy() - 1)) > 1e-6)
    assert wrong.tolist() == [[0, 0, 0, 0], [1, 0, 0, 0]]  # the bug, so this test notices when Quantus fixes it


# ---------------------------------------------------------------------------- the registry and score()


def test_registry_facts_match_quantus():
    for name in names():
        info = metric_info(name)
        if info.quantus is None:
            continue
        cls = getattr(quantus, info.quantus)
        higher = cls.score_direction == quantus.helpers.enums.ScoreDirection.HIGHER
        # Quantus declares lower for two scores where higher is better: region perturbation's curve
        # is a drop (AOPC), consistency the share of alike maps with alike predictions
        assert info.higher_is_better == (higher or name in ("region_perturbation", "consistency")), name
    assert {"faithfulness", "robustness", "localisation", "complexity", "randomisation", "axiomatic"} == {
        METRICS.get(n).family for n in names()}


def test_score_targets_and_errors(setup):
    net, model, x, y, a, s = setup
    kw = {"metric": "faithfulness_estimate", "features_in_step": 256}
    ref = score(model, x, a, y, **kw)
    for spelling in (y.tolist(), y.numpy(), class_index(y), None):  # None: the predicted class (= y)
        close(score(model, x, a, spelling, **kw), ref.numpy(), 1e-6)
    close(score(model, x.numpy(), a[:, 0].numpy(), y, **kw), ref.numpy(), 1e-6)  # arrays, (B, H, W) maps
    with pytest.raises(SynthvizError, match="did you mean"):
        score(None, x, a, metric="sparsenes")
    with pytest.raises(BadValue, match="takes no option"):
        score(None, x, a, metric="sparseness", eps=1)
    with pytest.raises(BadValue, match="masks"):
        score(None, x, a, metric="pointing_game")
    with pytest.raises(BadValue, match="pass a model"):
        score(None, x, a, metric="pixel_flipping")
    with pytest.raises(BadValue, match="explain"):
        score(model, x, a, y, metric="max_sensitivity")
    with pytest.raises(BadValue, match="features_in_step"):
        score(model, x, a, y, metric="pixel_flipping", features_in_step=7)
    with pytest.raises(BadValue, match="do not fit"):
        score(None, x, a[:, :, :5], metric="sparseness")


def test_every_metric_of_the_issue_is_registered():
    wanted = {"sparseness", "complexity", "effective_complexity", "pointing_game", "attribution_localisation",
              "top_k_intersection", "relevance_rank_accuracy", "relevance_mass_accuracy", "auc", "focus",
              "energy_pointing_game", "faithfulness_correlation", "faithfulness_estimate", "monotonicity",
              "monotonicity_correlation", "pixel_flipping", "region_perturbation", "irof", "selectivity",
              "sensitivity_n", "sufficiency", "road", "deletion", "insertion", "max_sensitivity", "avg_sensitivity",
              "local_lipschitz_estimate", "continuity", "relative_input_stability", "relative_output_stability",
              "relative_representation_stability", "consistency", "mprt", "smooth_mprt", "efficient_mprt",
              "random_logit", "completeness", "non_sensitivity", "input_invariance"}
    assert wanted <= set(names())
    import inspect

    for name in names():  # documented, and every option has a default (score needs only the data)
        info = metric_info(name)
        params = list(inspect.signature(info.fn).parameters)[1:]
        assert info.fn.__doc__ and params == list(info.defaults), name
