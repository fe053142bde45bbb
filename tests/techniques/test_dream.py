"""DeepDream on the real embedded model and the real chelsea photo."""

from __future__ import annotations

import imageio.v3 as iio
import pytest
import torch
import torch.nn.functional as F

import synthviz
from synthviz.io import load_image, resize, to_uint8
from synthviz.layers import capture
from synthviz.techniques.dream import tile_size, zoom_in

from clihelp import one_line_error, run

LAYER = "_blocks.5"


def rms(model, image, layer=LAYER):
    return float(capture(model, image, [layer])[layer].pow(2).mean().sqrt())


@pytest.fixture(scope="module")
def cat(chelsea):
    return resize(chelsea, 192)  # (1, 3, 128, 192)


@pytest.fixture(scope="module")
def untiled(embedded, cat):
    return synthviz.dream(embedded, cat, layer=LAYER, octaves=2, steps=6, tile=None)


def test_dream_amplifies_the_layer_and_keeps_the_size(embedded, cat, untiled):
    assert untiled.images.shape == cat.shape
    assert untiled.info["octave_sizes"] == [(91, 137), (128, 192)]
    assert rms(embedded, untiled.images) > 1.25 * rms(embedded, cat)
    change = (untiled.images - cat).abs().mean()
    assert 0.02 < change < 0.3  # the photo is still there, with visible dream detail


def test_tiled_gradients_give_the_same_kind_of_dream(embedded, cat, untiled):
    tiled = synthviz.dream(embedded, cat, layer=LAYER, octaves=2, steps=6, tile=96)
    assert tiled.info["tile"] is not None and tiled.info["tile"] <= 96  # it really tiled
    assert tiled.images.shape == cat.shape
    gain_tiled = rms(embedded, tiled.images) / rms(embedded, cat)
    gain_whole = rms(embedded, untiled.images) / rms(embedded, cat)
    assert gain_tiled > 1.25 and abs(gain_tiled / gain_whole - 1) < 0.15
    # the two dreams add correlated detail (the same features grow), not unrelated noise
    d_tiled, d_whole = (tiled.images - cat).flatten(), (untiled.images - cat).flatten()
    assert float(torch.corrcoef(torch.stack([d_tiled, d_whole]))[0, 1]) > 0.15


def test_tile_size_avoids_sliver_tiles():
    assert tile_size(1024, 1024, 512) == 512
    t = tile_size(1030, 2048, 512)  # 512 would leave a 6-px strip at the bottom
    assert min(1030 % t or t, 2048 % t or t) >= 64


def test_guided_dream_pulls_the_features_toward_the_guide(embedded, skimage_image, cat, untiled):
    guide = skimage_image("coffee")
    guided = synthviz.dream(embedded, cat, layer=LAYER, octaves=2, steps=6, guide=guide, tile=None)
    g = F.normalize(capture(embedded, resize(guide, 224), [LAYER])[LAYER].flatten(2)[0], dim=0)  # (C, n)

    def match(image):  # mean over positions of the best cosine similarity to a guide feature
        a = F.normalize(capture(embedded, image, [LAYER])[LAYER].flatten(2)[0], dim=0)
        return float((a.T @ g).amax(1).mean())

    assert guided.info["guided"]
    assert match(guided.images) > match(cat)
    assert match(guided.images) > match(untiled.images)  # more than a plain dream does


def test_cli_zoom_video(cat, tmp_path):
    photo = tmp_path / "cat.png"
    iio.imwrite(photo, to_uint8(resize(cat, 96)))
    out, video = tmp_path / "dream.png", tmp_path / "zoom.gif"
    result = run("dream", photo, "--layer", LAYER, "--octaves", 1, "--steps", 2, "--zoom-frames", 3, "--out", out,
                 "--video", video)
    assert result.exit_code == 0, result.output
    frames = iio.imread(video, index=None)
    assert frames.shape[:3] == (3, 64, 96)
    assert load_image(out).shape[-2:] == (64, 96)
    # frame k+1 is frame k zoomed in (and dreamed a little): closer to the zoomed frame than to the frame itself
    f = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    zoomed = zoom_in(f[:1], 1.05)
    assert (f[1:2] - zoomed).abs().mean() < (f[1:2] - f[:1]).abs().mean()
    assert photo.exists() and load_image(photo).shape[-2:] == (64, 96)


def test_cli_bad_inputs(cat, tmp_path):
    photo = tmp_path / "cat.png"
    iio.imwrite(photo, to_uint8(resize(cat, 96)))
    out = tmp_path / "o.png"
    one_line_error(run("dream", photo, "--layer", LAYER, "--channel", 500, "-o", out), "out of range", "0..79")
    one_line_error(run("dream", photo, "--channel", 3, "--guide", photo, "-o", out), "not both")
    one_line_error(run("dream", photo, "--guide", tmp_path / "nope.png", "-o", out), "not found")
    one_line_error(run("dream", photo, "--tile", 16, "-o", out), "tile 16 is too small")
    one_line_error(run("dream", photo, "--layer", "logits", "-o", out), "convolutional layer")
    one_line_error(run("dream", photo, "--octave-scale", 0.5, "-o", out), "octave_scale")
    assert not out.exists()
