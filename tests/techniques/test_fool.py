"""Fooling images on the real embedded model and the real chelsea photo (class 285)."""

from __future__ import annotations

import hashlib
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import synthviz
from synthviz.errors import SynthvizError
from synthviz.io import load_image, quantize, resize, save_image, to_uint8
from synthviz.techniques.fool import grid_ball, parse_epsilon

from clihelp import one_line_error, run

GOLDFISH = 1


@pytest.fixture(scope="module")
def cat160(chelsea):
    """Chelsea at 160 px (longer side), NOT on the 8-bit grid: the recipe must handle that too."""
    return resize(chelsea, 160)


def predict(model, image):
    with torch.no_grad():
        return int(model(image).argmax())


def test_cli_fooled_png_read_back_is_the_target_and_the_input_is_untouched(embedded, cat_png, tmp_path):
    before = hashlib.sha256(cat_png.read_bytes()).hexdigest()
    out = tmp_path / "fooled.png"
    result = run("fool", cat_png, "--target", "goldfish", "--size", 160, "--out", out)
    assert result.exit_code == 0, result.output
    assert "Egyptian cat (285)" in result.output and "goldfish (1)" in result.output
    back = load_image(out)  # exactly what a user gets from disk
    assert back.shape[-1] == 160
    assert predict(embedded, back) == GOLDFISH
    original = load_image(cat_png, 160)
    assert predict(embedded, original) == 285
    assert (back - original).abs().max() < 0.25  # a small change, not a new picture
    panel = load_image(tmp_path / "fooled-diff.png")
    assert panel.shape[-1] > 4 * 160  # original | fooled | x10 | map
    assert hashlib.sha256(cat_png.read_bytes()).hexdigest() == before


def test_unconstrained_stops_as_soon_as_the_8bit_image_is_fooled(embedded, cat160):
    r = synthviz.fool(embedded, cat160, target=GOLDFISH)
    assert r.info["fooled"] and r.stopped == "early" and 1 < r.steps < 100
    assert torch.equal(r.images, quantize(r.images))  # the result is what a PNG holds
    assert predict(embedded, r.images) == GOLDFISH
    # the same run one step shorter is not fooled yet: it stopped at the first fooled step
    with pytest.warns(UserWarning, match="not fooled after"):
        shorter = synthviz.fool(embedded, cat160, target=GOLDFISH, steps=r.steps - 1)
    assert not shorter.info["fooled"] and predict(embedded, shorter.images) != GOLDFISH
    assert r.info["l2"] > shorter.info["l2"] > 0


@pytest.mark.parametrize("target", [GOLDFISH, None])
def test_budgeted_mode_stays_within_epsilon_after_8bit_saving(embedded, cat160, tmp_path, target):
    eps = 2 / 255
    r = synthviz.fool(embedded, cat160, target=target, epsilon="2/255")
    assert r.info["fooled"], r.info["report"]
    path = save_image(r.images[0], tmp_path / "adv.png")
    back = load_image(path)
    assert (back - cat160).abs().max() <= eps + 1e-6  # within ε of the (off-grid) original, after rounding
    assert r.info["linf"] <= eps + 1e-6
    new = predict(embedded, back)
    assert new == GOLDFISH if target is not None else new != 285


def test_grid_ball_keeps_every_8bit_value_inside_epsilon(cat160):
    lower, upper = grid_ball(cat160, 1 / 255)
    for bound in (lower, upper):
        assert torch.equal(quantize(bound), bound)
        assert (bound - cat160).abs().max() <= 1 / 255 + 1e-6
    assert (lower <= cat160).all() and (cat160 <= upper).all()


def test_epsilon_parsing():
    assert parse_epsilon("2/255") == pytest.approx(2 / 255)
    assert parse_epsilon(0.01) == 0.01 and parse_epsilon(None) is None
    for bad, fragment in [(-0.01, "positive"), (8, "8/255?"), (0.5, "too large"), (0.001, "below 1/255"),
                          ("two", "cannot read")]:
        with pytest.raises(SynthvizError, match=fragment.replace("?", r"\?").replace("/", "/")):
            parse_epsilon(bad)


def test_cli_bad_inputs_get_one_line_errors(cat_png, tmp_path):
    out = tmp_path / "o.png"
    one_line_error(run("fool", tmp_path / "missing.png", "-o", out), "not found")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    one_line_error(run("fool", text, "-o", out), "cannot read")
    one_line_error(run("fool", cat_png, "--target", "285", "--size", 160, "-o", out), "already predicts class 285")
    one_line_error(run("fool", cat_png, "--epsilon", "-2/255", "-o", out), "positive")
    one_line_error(run("fool", cat_png, "--epsilon", "8", "-o", out), "too large", "8/255")
    one_line_error(run("fool", cat_png, "--target", "nosuchclass", "--size", 160, "-o", out), "unknown class")
    one_line_error(run("fool", cat_png, "-o", cat_png, "--overwrite"), "input image")
    assert not out.exists()


@pytest.mark.parametrize("kind", ["grey", "rgba"])
def test_cli_greyscale_and_rgba_photos_are_converted_with_a_note(embedded, chelsea, tmp_path, kind):
    rgb = to_uint8(resize(chelsea, 96))
    array = rgb.mean(2).astype(np.uint8) if kind == "grey" else np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    path = tmp_path / f"{kind}.png"
    iio.imwrite(path, array)
    out = tmp_path / "o.png"
    result = run("fool", path, "--epsilon", "2/255", "--steps", 2, "-o", out)
    assert result.exit_code == 0, result.output
    assert "note:" in result.output and ("greyscale" in result.output or "alpha" in result.output)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original = load_image(path)
    assert (load_image(out) - original).abs().max() <= 2 / 255 + 1e-6
