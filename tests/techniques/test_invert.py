"""Feature inversion on the real embedded model and the real chelsea photo."""

from __future__ import annotations

import pytest
from kornia.metrics import psnr

import synthviz
from synthviz.io import load_image
from synthviz.layers import capture

from clihelp import one_line_error, run


def test_early_layer_reconstructs_the_photo_and_the_feature_error_falls(embedded, chelsea):
    r = synthviz.invert(embedded, chelsea, layer="_blocks.1", size=128, steps=100)
    original = r.extras["original"]
    assert r.images.shape == original.shape == (1, 3, 85, 128)
    # measured here, independently of the technique's own report
    assert float(psnr(r.images, original, 1.0)) >= 20.0
    assert r.info["psnr"][0] == pytest.approx(float(psnr(r.images, original, 1.0)), abs=1e-3)
    target = capture(embedded, original, ["_blocks.1"])["_blocks.1"]
    got = capture(embedded, r.images, ["_blocks.1"])["_blocks.1"]
    error = float((got - target).pow(2).sum() / target.pow(2).sum())
    assert error < 0.1 and error == pytest.approx(r.info["feature_error"][0], rel=1e-3)
    errors = r.info["feature_errors"][0]
    assert len(errors) == 100
    assert errors[0] > 0.8  # from noise: nothing matches yet
    quarter = [sum(errors[i : i + 25]) / 25 for i in range(0, 100, 25)]
    assert all(a > b for a, b in zip(quarter, quarter[1:])), quarter  # falls quarter after quarter
    # the technique's own start (one step from its noise) is far from the photo: the PSNR above is earned
    start = synthviz.invert(embedded, chelsea, layer="_blocks.1", size=128, steps=1).images
    assert float(psnr(start, original, 1.0)) < 16


def test_cli_layers_make_one_row_from_shallow_to_deep(cat_png, tmp_path):
    out = tmp_path / "row.png"
    result = run("invert", cat_png, "--layers", "_bn0,_blocks.1,_blocks.5", "--size", 64, "--steps", 40, "--out", out)
    assert result.exit_code == 0, result.output
    row = load_image(out)
    assert row.shape[-1] > 4 * 64 and row.shape[-2] < 2 * 64  # original + 3 reconstructions in one row
    report = result.output.strip().splitlines()[-1]
    psnrs = [float(part.split("PSNR ")[1].split(" dB")[0]) for part in report.split("; ")]
    assert len(psnrs) == 3 and psnrs[0] > psnrs[1] > psnrs[2]  # deeper layers keep less of the photo


def test_bad_inputs(cat_png, tmp_path):
    out = tmp_path / "o.png"
    one_line_error(run("invert", cat_png, "--layer", "_blocks.99", "--steps", 1, "-o", out), "unknown layer", "_blocks.9")
    one_line_error(run("invert", cat_png, "--layers", "_bn0,,_blocks.1", "--steps", 1, "-o", out), "cannot read layers")
    one_line_error(run("invert", cat_png, "--layer", "_bn0", "--layers", "_bn0", "-o", out), "not both")
    one_line_error(run("invert", tmp_path / "missing.jpg", "-o", out), "not found")
    one_line_error(run("invert", cat_png, "--steps", 0, "-o", out), "steps must be positive")
    assert not out.exists()
