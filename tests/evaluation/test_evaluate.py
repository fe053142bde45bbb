"""Faithfulness metrics, randomization and invariance tests, the report (issue 14)."""

from __future__ import annotations

import copy
import csv

import pytest
import torch
from clihelp import one_line_error, run
from torch import nn

from synthviz.evaluation import (
    auc,
    deletion_curve,
    evaluate_methods,
    gini,
    infidelity,
    input_invariance,
    insertion_curve,
    iou,
    linear_impute,
    map_problem,
    pointing_game,
    randomize,
    shifted_model,
)
from synthviz.evaluation.curves import blurred
from synthviz.io import resize, save_image
from synthviz.models import Model


def plain(net: nn.Module, classes: int = 2, name: str = "toy") -> Model:
    return Model(net, mean=(0, 0, 0), std=(1, 1, 1), classes=[f"c{i}" for i in range(classes)], name=name, min_size=4)


class RegionNet(nn.Module):
    """Logit 1 = 40 × (mean red value in the box rows 8:16, cols 8:16 − 0.7); logit 0 = 0."""

    def forward(self, x):
        s = 40 * (x[:, 0, 8:16, 8:16].mean((1, 2)) - 0.7)
        return torch.stack([torch.zeros_like(s), s], 1)


def region_image() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = 0.2 + 0.05 * torch.rand(1, 3, 32, 32)
    x[:, :, 8:16, 8:16] = 1.0
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:16, 8:16] = 1
    return x, mask


def test_deletion_of_the_exact_evidence_map_beats_a_random_map_widely():
    model, (x, mask) = plain(RegionNet()), region_image()
    t = torch.tensor([1])
    evidence = mask + 0.01 * torch.rand_like(mask)  # the evidence region first
    noise = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    d_ev, d_rand = deletion_curve(model, x, evidence, t, steps=16), deletion_curve(model, x, noise, t, steps=16)
    # the curve's ends are the image and the blurred image, whatever the map
    p = lambda z: torch.softmax(RegionNet()(z), 1)[0, 1]
    assert d_ev[0, 0] == pytest.approx(float(p(x)), abs=1e-6)
    assert d_ev[0, -1] == pytest.approx(float(p(blurred(x))), abs=1e-6)
    # the region is 1/16 of the pixels: after the first step it is gone entirely
    assert float(d_ev[0, 1]) == pytest.approx(float(p(torch.where(mask.bool(), blurred(x), x))), abs=1e-6)
    assert float(auc(d_ev)) < 0.1
    assert float(auc(d_rand)) > 0.5
    i_ev, i_rand = insertion_curve(model, x, evidence, t), insertion_curve(model, x, noise, t)
    assert float(auc(i_ev)) > 0.9 and float(auc(i_ev)) - float(auc(i_rand)) > 0.2


def test_road_imputation_keeps_every_other_pixel_and_is_linear():
    torch.manual_seed(0)
    x = torch.rand(3, 20, 24)
    removed = torch.zeros(20, 24, dtype=torch.bool)
    removed[5:12, 6:15] = True
    removed[0, 0] = True  # a corner too
    out = linear_impute(x, removed, noise=0.01, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, ~removed], x[:, ~removed])
    assert not torch.equal(out[:, removed], x[:, removed])
    # a linear ramp is reproduced exactly inside (symmetric neighbour weights), without noise
    yy, xx = torch.meshgrid(torch.arange(20.0), torch.arange(24.0), indexing="ij")
    ramp = (0.1 + 0.02 * yy + 0.01 * xx).expand(3, -1, -1).clone()
    inner = torch.zeros(20, 24, dtype=torch.bool)
    inner[5:12, 6:15] = True
    assert torch.allclose(linear_impute(ramp, inner, noise=0.0), ramp, atol=1e-5)


def test_input_shift_leaves_logits_unchanged_and_flags_grad_x_input(embedded, chelsea):
    x = resize(chelsea, (64, 64))
    before = {k: v.clone() for k, v in embedded.net.state_dict().items()}
    # float64 copies: the equality is exact up to rounding
    m64 = Model(copy.deepcopy(embedded.net).double(), embedded.mean.flatten().tolist(), embedded.std.flatten().tolist(),
                embedded.classes, name="lite0-f64")
    shifted = shifted_model(m64, -1.0)
    with torch.no_grad():
        gap = (m64(x.double()) - shifted(x.double() - 1.0)).abs().max()
        naive = (m64(x.double()) - m64(x.double() - 1.0)).abs().max()
    assert float(gap) < 1e-5
    assert float(naive) > 1.0  # the shift alone changes the logits a lot
    assert input_invariance(embedded, x, "gradient")["invariant"].all()
    assert input_invariance(embedded, x, "gradcam")["invariant"].all()
    gxi = input_invariance(embedded, x, "grad_x_input")
    assert not gxi["invariant"].any() and gxi["logits"] < 1e-3
    assert not input_invariance(embedded, x, "integrated_gradients", steps=8)["invariant"].any()
    after = embedded.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_independent_randomization_changes_only_the_named_layer(embedded):
    before = {k: v.clone() for k, v in embedded.net.state_dict().items()}
    work = randomize(embedded, "_blocks.3", seed=0)
    changed = {k for k, v in work.net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("_blocks.3.") for k in changed)
    assert any(k.endswith("weight") for k in changed)
    assert all(torch.equal(before[k], v) for k, v in embedded.net.state_dict().items())


def test_cascade_walks_one_copy_down_the_blocks_and_ends_where_randomize_does(embedded):
    """``cascade`` (sanity, the evaluation's cascading check) and ``randomize`` (independent) are one
    re-initialisation: each step adds exactly one block to what changed, the last step equals
    ``randomize`` of all the blocks with the same seed, and the user's model is untouched."""
    from synthviz.randomize import cascade

    before = {k: v.clone() for k, v in embedded.net.state_dict().items()}
    blocks = ["_fc", "_conv_head", "_blocks.15"]
    seen = []
    for block, work in cascade(embedded, blocks, seed=3):
        changed = {k.split(".")[0] if not k.startswith("_blocks") else ".".join(k.split(".")[:2])
                   for k, v in work.net.state_dict().items() if not torch.equal(v, before[k])}
        seen.append(block)
        assert changed == set(seen), (block, changed)
    whole = randomize(embedded, blocks, seed=3)
    assert all(torch.equal(v, whole.net.state_dict()[k]) for k, v in work.net.state_dict().items())
    assert all(torch.equal(before[k], v) for k, v in embedded.net.state_dict().items())


def test_localisation_pointing_game_and_iou():
    mask = torch.zeros(2, 1, 10, 10)
    mask[:, :, 2:5, 2:5] = 1
    maps = torch.zeros(2, 1, 10, 10)
    maps[0, 0, 2:5, 2:6] = 0.6    # thresholded at 0.5 of the range: 12 pixels, 9 of them inside the mask
    maps[0, 0, 3, 3] = 1          # peak inside
    maps[1, 0, 8, 8] = 1          # peak outside
    assert pointing_game(maps, mask).tolist() == [True, False]
    assert pointing_game(maps, mask, tolerance=4).tolist() == [True, True]
    assert iou(maps, mask)[0] == pytest.approx(9 / 12)


def test_gini_and_infidelity_against_captum():
    from captum.metrics import infidelity as captum_infidelity

    assert gini(torch.ones(1, 1, 4, 4))[0] == pytest.approx(0.0)
    one_hot = torch.zeros(1, 1, 4, 4)
    one_hot[0, 0, 1, 2] = 3
    assert gini(one_hot)[0] == pytest.approx(15 / 16)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model = plain(net, classes=3)
    x = torch.rand(1, 3, 12, 12)
    maps = torch.rand(1, 1, 12, 12)
    ours = infidelity(model, x, maps, torch.tensor([2]), samples=8, sigma=0.05, seed=3)
    gen = torch.Generator().manual_seed(3)
    noise = torch.cat([0.05 * torch.randn(x.shape, generator=gen) for _ in range(8)])

    def perturb(inputs):
        return noise, inputs - noise

    theirs = captum_infidelity(lambda z: net(z), perturb, x, maps.expand(-1, 3, -1, -1), target=2,
                               n_perturb_samples=8, normalize=True)
    assert float(ours[0]) == pytest.approx(float(theirs[0]), rel=1e-3)


class Flat(nn.Module):
    """Logits that do not depend on the image (a constant gradient map), or NaN."""

    def __init__(self, nan: bool = False):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float("nan") if nan else 0.0))

    def forward(self, x):
        s = (x * self.w).mean((1, 2, 3))
        return torch.stack([s, 1 - s], 1)


@pytest.mark.parametrize("nan,problem", [(False, "constant map"), (True, "NaN map")])
def test_a_nan_or_constant_map_is_reported_not_scored(nan, problem):
    model = plain(Flat(nan))
    x = torch.rand(1, 3, 16, 16)
    ev = evaluate_methods(model, {"a.png": x}, "gradient", checks=(), curve_steps=4, samples=2)
    row = next(r for r in ev.rows if r["method"] == "gradient")
    assert problem in row["notes"] and row["deletion_auc"] is None and row["insertion_auc"] is None
    assert map_problem(torch.full((1, 1, 4, 4), 0.3)) == ["constant map"]
    ok = next(r for r in ev.rows if r["method"] == "random")
    assert ok["notes"] is None and ok["deletion_auc"] is not None


def test_evaluate_cli_writes_metrics_and_page(tmp_path, embedded, chelsea):
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "report"
    photos.mkdir(), masks.mkdir()
    save_image(resize(chelsea, (64, 64)), photos / "cat.png")
    mask = torch.zeros(3, 64, 64)
    mask[:, 10:50, 5:40] = 1
    save_image(mask, masks / "cat.png")
    res = run("evaluate", photos, "--methods", "gradcam", "--masks", masks, "--out", out, "--size", 64,
              "--checks", "road", "--samples", 2, "--curve-steps", 4)
    assert res.exit_code == 0, res.output
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header[:4] == ["method", "image", "deletion_auc", "insertion_auc"]
    assert not [c for c in header[4:] if "deletion" in c or "insertion" in c]
    assert [r["method"] for r in rows] == ["gradcam", "random", "smoothgrad"]
    assert all(0 <= float(r["deletion_auc"]) <= 1 and r["pointing_game"] in ("0", "1") for r in rows)
    assert all(float(r["seconds"]) > 0 or r["method"] == "random" for r in rows)
    page = (out / "index.html").read_text()
    assert page.count("<svg") == 6 and "data:image/png;base64," in page
    again = run("evaluate", photos, "--out", out)
    one_line_error(again, "--overwrite")
    one_line_error(run("evaluate", tmp_path / "nothing", "--out", out / "x"), "not found")
