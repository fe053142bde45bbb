"""Evaluation on a transformer with a fixed input size (issue 25): the randomization and invariance
checks work on private copies of the model, and a copy must keep every setting of the Model (the
fixed 224 px input above all), or timm refuses the photo at its own size."""

from __future__ import annotations

import csv

import pytest
import torch
from clihelp import run

from synthviz.io import save_image
from synthviz.models import load_model


def test_evaluate_with_randomization_and_invariance_on_a_fixed_size_vit(tmp_path, chelsea):
    pytest.importorskip("timm")
    photos, out = tmp_path / "photos", tmp_path / "ev"
    photos.mkdir()
    save_image(chelsea[0], photos / "chelsea.png")  # 451 x 300: not the model's 224 x 224
    res = run("evaluate", photos, "--model", "timm:vit_tiny_patch16_224", "--weights", "random",
              "--checks", "randomization,invariance", "--size", 224, "--methods", "gradcam",
              "--samples", 2, "--curve-steps", 2, "--out", out)
    assert res.exit_code == 0, res.output
    with open(out / "metrics.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert rows["gradcam"]["image"] == "chelsea.png"  # (a random ViT's Grad-CAM is flat: noted, not scored)
    # the checks ran on the copies (a copy without the fixed input size failed before any row was written)
    ref = rows["smoothgrad"]
    for column in ("random_top_spearman", "random_mid_spearman", "random_all_spearman", "invariance_spearman"):
        assert -1.0 <= float(ref[column]) <= 1.0, (column, ref)
    assert float(ref["random_all_spearman"]) < 0.9  # randomizing every block moves the map
    # the mean-shifted copy M'(x - 1) = M(x) gives the same map (Kindermans et al.): the copy kept the
    # preprocessing and input size the shift is folded into
    assert float(ref["invariance_change"]) < 1e-3 and float(ref["invariance_spearman"]) > 0.99, ref


def test_model_copy_keeps_every_setting_and_owns_its_weights():
    pytest.importorskip("timm")
    m = load_model("timm:vit_tiny_patch16_224", weights="random")
    c = m.copy()
    for attr in ("name", "input_size", "min_size", "prefix_tokens", "classes", "layers", "preprocess",
                 "channels_last"):
        assert getattr(c, attr) == getattr(m, attr), attr
    assert torch.equal(c.mean, m.mean) and torch.equal(c.std, m.std)
    x = torch.rand(1, 3, 96, 64)  # not 224 x 224: both resize it to their fixed input size
    with torch.no_grad():
        torch.testing.assert_close(c(x), m(x))
        before = m.net.head.weight.clone()
        c.net.head.weight.add_(1.0)
    assert torch.equal(m.net.head.weight, before)  # the copy's weights are its own
    assert c.net is not m.net and c.layers is not m.layers
