"""The registered metrics inside ``evaluate`` (issue 31): ``--metrics``/``--metric-option`` and their
columns, and the random reference matched in smoothness."""

from __future__ import annotations

import csv

import pytest
import torch
from clihelp import one_line_error, run

from synthviz.errors import BadValue, SynthvizError
from synthviz.evaluation import evaluate_methods, score
from synthviz.evaluation.metrics.select import checked, parse_options, parse_value
from synthviz.evaluation.references import random_maps, reference_rows
from synthviz.io import resize, save_image


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/evaluation/conftest.py


def test_metric_names_and_options_are_checked_with_one_line_errors():
    assert checked("Sparseness, pointing-game,sparseness", None) == (
        ["sparseness", "pointing_game"], {"sparseness": {}, "pointing_game": {}})
    with pytest.raises(SynthvizError, match="did you mean: sparseness"):
        checked("sparsness", None)
    with pytest.raises(BadValue, match="no chosen metric takes the option k"):
        checked("sparseness", ["k=50"])
    with pytest.raises(BadValue, match="KEY=VALUE"):
        parse_options(["k"])
    names, per = checked("top_k_intersection,pixel_flipping", ["k=50", "features_in_step=64", "abs=true"])
    assert per == {"top_k_intersection": {"k": 50, "abs": True}, "pixel_flipping": {"features_in_step": 64, "abs": True}}
    assert [parse_value(v) for v in ("0.1", "(1, 5)", "None", "black", "FALSE")] == [0.1, (1, 5), None, "black", False]
    assert checked("none", None) == ([], {})


def test_registered_metrics_become_columns_equal_to_independent_computations(embedded, chelsea):
    from skimage.data import coffee
    from synthviz.io import to_tensor

    images = {"cat": resize(chelsea, (48, 48)), "coffee": resize(to_tensor(coffee()), (48, 48))}
    mask = torch.zeros(1, 1, 48, 48, dtype=torch.bool)
    mask[..., 8:40, 4:30] = True
    ev = evaluate_methods(embedded, images, "gradient,grad_x_input", masks={"cat": mask}, checks=("invariance",),
                          curve_steps=2, samples=2, metrics="sparseness,pointing_game,input_invariance,pixel_flipping",
                          metric_options={"features_in_step": 256})
    assert ev.columns[-7:] == ["sparseness", "pointing_game_quantus", "input_invariance", "pixel_flipping",
                               "seconds", "target", "notes"]
    for r in ev.rows:
        # Quantus's Sparseness is the Gini index: evaluate's own gini column, another implementation
        assert r["sparseness"] == pytest.approx(r["gini"], rel=1e-5)
        if r["method"] != "random":  # (the random row's pointing game is its first draw's)
            assert r["pointing_game_quantus"] == r["pointing_game"]
        if r["method"] in ("gradient", "grad_x_input"):
            # Kindermans's input invariance: the metric and evaluate's own check agree
            assert r["input_invariance"] == (0.0 if "not input invariant" in (r["notes"] or "") else 1.0)
    got = {(r["method"], r["image"]): r for r in ev.rows}
    assert got[("gradient", "cat")]["input_invariance"] == 1.0 and got[("grad_x_input", "cat")]["input_invariance"] == 0.0
    assert got[("random", "cat")]["input_invariance"] is None  # nothing to explain again
    assert got[("gradient", "coffee")]["pointing_game_quantus"] is None  # no mask for this image
    cls = got[("gradient", "cat")]["target"]
    direct = score(embedded, images["cat"], ev.maps[("gradient", "cat")], cls, metric="pixel_flipping",
                   features_in_step=256)
    assert got[("gradient", "cat")]["pixel_flipping"] == pytest.approx(float(direct[0]), rel=1e-6)


def test_evaluate_cli_metrics_ranks_and_summary(tmp_path, chelsea):
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "report"
    photos.mkdir(), masks.mkdir()
    save_image(resize(chelsea, (48, 48)), photos / "cat.png")
    save_image(resize(chelsea.flip(-1), (48, 48)), photos / "cat2.png")
    for name in ("cat", "cat2"):
        mask = torch.zeros(3, 48, 48)
        mask[:, 8:40, 4:30] = 1
        save_image(mask, masks / f"{name}.png")
    common = ("--methods", "gradcam", "--size", 48, "--checks", "none", "--samples", 2, "--curve-steps", 2)
    one_line_error(run("evaluate", photos, "--out", out, *common, "--metrics", "sparsness"), "did you mean: sparseness")
    one_line_error(run("evaluate", photos, "--out", out, *common, "--metrics", "sparseness", "--metric-option", "k=3"),
                   "no chosen metric takes the option k")
    res = run("evaluate", photos, "--out", out, *common, "--masks", masks, "--metrics", "sparseness,top_k_intersection",
              "--metric-option", "k=50")
    assert res.exit_code == 0, res.output
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"sparseness", "top_k_intersection"} <= set(rows[0])
    for r in rows:
        if r["method"] == "gradcam":  # k=50 reached the metric: a fraction of 50 pixels
            assert float(r["top_k_intersection"]) * 50 == pytest.approx(round(float(r["top_k_intersection"]) * 50))
    with open(out / "ranks.csv") as f:
        ranks = list(csv.DictReader(f))
    assert {("complexity", "sparseness"), ("localisation", "top_k_intersection")} <= {(r["family"], r["metric"]) for r in ranks}
    summary = (out / "summary.md").read_text()
    assert "## localisation" in summary and "random: random values on" in summary


def test_reference_rows_are_matched_to_each_methods_grid():
    rows = reference_rows({"gradient": (64, 64), "gradcam": (2, 2), "layercam": (8, 8)}, (64, 64), ["random"])
    assert rows == {"random": ["gradcam"], "random@8": ["layercam"], "random_pixels": ["gradient"]}
    assert reference_rows({"gradient": (64, 64)}, (64, 64), ["random", "random_pixels"]) == {
        "random": ["gradient"], "random_pixels": []}
    # 32-pixel cells on 40 × 64: a 2 × 2 grid of uniform values, upsampled as Grad-CAM's maps are
    cells = torch.rand(3, 1, 2, 2, generator=torch.Generator().manual_seed(5))
    expected = torch.nn.functional.interpolate(cells, size=(40, 64), mode="bilinear", align_corners=False)
    assert torch.equal(random_maps((40, 64), 32, draws=3, seed=5), expected)


def test_smooth_random_reference_loses_to_gradcam_on_deletion(embedded, chelsea):
    """chelsea at 224 px: the i.i.d. random map beats Grad-CAM on deletion (salt-and-pepper removal is
    off the image manifold); the random map of Grad-CAM's own smoothness does not."""
    x = resize(chelsea, 224)
    ev = evaluate_methods(embedded, {"chelsea": x}, "gradcam,random_pixels", checks=(), curve_steps=4, samples=2)
    dele = {r["method"]: r["deletion_auc"] for r in ev.rows}
    assert ev.methods == ["gradcam", "random", "random_pixels", "smoothgrad"]
    assert dele["random_pixels"] < dele["gradcam"] < dele["random"]
    assert "32-pixel cells" in ev.references["random"] and ev.matched == {"gradcam": "random", "smoothgrad": "random_pixels"}

    def roughness(m):
        return float((m[..., 1:, :] - m[..., :-1, :]).abs().mean())

    assert roughness(ev.maps[("random", "chelsea")]) < 0.1 * roughness(ev.maps[("random_pixels", "chelsea")])


def test_the_python_technique_takes_metrics_and_returns_ranks(embedded, chelsea):
    import synthviz

    x = resize(chelsea, (48, 48))
    result = synthviz.evaluate(embedded, x, methods="gradient", checks="", curve_steps=2, samples=2,
                               metrics=["sparseness"], metric_options=["abs=true"], size=None)
    rows = result.info["rows"]
    assert all(r["sparseness"] == pytest.approx(r["gini"], rel=1e-5) for r in rows)  # Gini: two implementations
    ranked = {(r["metric"], r["method"]) for r in result.info["ranks"]}
    assert {("sparseness", m) for m in ("gradient", "random", "smoothgrad")} <= ranked
    with pytest.raises(SynthvizError, match="did you mean"):
        synthviz.evaluate(embedded, x, methods="gradient", metrics="sparsnes")
