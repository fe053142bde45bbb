"""Neural style transfer on the embedded EfficientNet-Lite0 with real scikit-image photos."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

import synthviz
from synthviz.cli.app import app
from synthviz.errors import SynthvizError
from synthviz.io import resize, save_image
from synthviz.layers import capture
from synthviz.objectives import feature_match
from synthviz.painting import (chroma, score, style_layers, layer_weights, style_objective,
                                            style_targets)

SIZE = 96
# Gatys' own recipe (L-BFGS on pixels) converges in the few steps these mechanics tests can afford;
# the default recipe (Adam on a Fourier image) is checked in test_quality.py
# (its content at the model's `content` layer: at 64-96 px the last block, style's default since 0.5, is 2x3 positions)
LBFGS = dict(optimizer="lbfgs", param="pixel", tv_weight=1.0, checker_weight=0.0, style_weight=3.0, content_layer="_blocks.8")
pytestmark = pytest.mark.filterwarnings("ignore:style image .* is greyscale")


@pytest.fixture(scope="module")
def photos(skimage_image):
    return {"astronaut": skimage_image("astronaut"), "chelsea": skimage_image("chelsea"),
            "brick": skimage_image("brick"), "grass": skimage_image("grass"), "gravel": skimage_image("gravel")}


def losses(model, image, content, style):
    """(content error, style error) of ``image`` against ``content`` and ``style``, as the recipe measures them."""
    h, w = image.shape[-2:]
    c = resize(content, (h, w))
    layer = model.layers["content"]
    c_obj = feature_match(layer, capture(model, c, [layer])[layer])
    names = style_layers(model)
    s_obj = style_objective(style_targets(model, [resize(style, max(h, w))], [1.0], names), layer_weights(None, names))
    return -score(model, c_obj, image), -score(model, s_obj, image)


@pytest.mark.parametrize("init", ["content", "noise"])
def test_style_is_closer_to_content_and_style_than_either_start(embedded, photos, init):
    content, style = photos["chelsea"], photos["gravel"]
    result = synthviz.style(content=content, styles=style, size=SIZE, steps=40, scales=1, init=init, model=embedded,
                            **LBFGS)
    out = result.images
    assert out.shape == (1, 3, 64, 96)  # the content's aspect ratio
    c_out, s_out = losses(embedded, out, content, style)
    assert (c_out, s_out) == pytest.approx((result.info["content_loss"], result.info["style_loss"]), rel=1e-3)
    c_of_content, s_of_content = losses(embedded, resize(content, (64, 96)), content, style)
    c_of_style, s_of_style = losses(embedded, resize(style, (64, 96)), content, style)
    torch.manual_seed(0)
    c_of_noise, s_of_noise = losses(embedded, (0.5 + 0.1 * torch.randn(1, 3, 64, 96)).clamp(0, 1), content, style)
    # closer to the style than the content photo (and than noise), closer to the content than the style
    # photo (and than noise)
    assert s_out < 0.5 * s_of_content and s_out < 0.5 * s_of_noise
    assert c_out < 0.8 * c_of_style and c_out < 0.8 * c_of_noise
    assert s_out < result.info["style_loss_start"]
    if init == "noise":
        assert c_out < result.info["content_loss_start"]


def test_preserve_colors_keeps_the_content_chroma(embedded, photos):
    content, style = photos["astronaut"], photos["chelsea"]  # a brown/orange cat on a white/red/blue photo
    kw = dict(size=SIZE, steps=30, scales=1, model=embedded, **LBFGS)
    plain = synthviz.style(content=content, styles=style, **kw).images
    luma = synthviz.style(content=content, styles=style, preserve_colors=True, **kw).images
    matched = synthviz.style(content=content, styles=style, preserve_colors="match", **kw).images
    target = chroma(resize(content, (SIZE, SIZE)))
    err = {k: float((chroma(v) - target).abs().mean()) for k, v in (("plain", plain), ("luma", luma), ("match", matched))}
    assert err["luma"] < 0.01 and err["luma"] < 0.25 * err["plain"], err
    # matching the style's colours keeps the content's colour distribution (mean chroma), not its pixels
    mean_err = {k: float((chroma(v).mean((2, 3)) - target.mean((2, 3))).abs().max())
                for k, v in (("plain", plain), ("match", matched))}
    assert mean_err["match"] < 0.7 * mean_err["plain"], mean_err


def test_blend_weights_pick_the_styles(embedded, photos):
    content = photos["chelsea"]
    kw = dict(size=64, steps=5, scales=1, model=embedded)
    only_brick = synthviz.style(content=content, styles=[photos["brick"], photos["grass"]], blend=[1, 0], **kw).images
    brick = synthviz.style(content=content, styles=photos["brick"], **kw).images
    grass_heavy = synthviz.style(content=content, styles=[photos["brick"], photos["grass"]], blend="1,3", **kw)
    assert torch.allclose(only_brick, brick, atol=1e-5)
    assert grass_heavy.info["blend"] == pytest.approx([0.25, 0.75])
    assert not torch.allclose(grass_heavy.images, brick, atol=1e-2)


def test_ladder_upsamples_and_continues(embedded, photos):
    result = synthviz.style(content=photos["chelsea"], styles=photos["brick"], size=128, steps=16, scales=2, model=embedded)
    scales = result.info["scales"]
    assert [s["size"] for s in scales] == [(42, 64), (85, 128)]
    assert [s["steps"] for s in scales] == [16, 8]
    assert result.images.shape == (1, 3, 85, 128)
    # each scale lowers its objective; the fine scale starts from the coarse result, not from scratch
    assert all(s["end"] > s["start"] for s in scales)


def test_vgg19_presets_and_avg_pool_swap(photos):
    model = synthviz.load_model("vgg19", weights="random")
    result = synthviz.style(content=photos["chelsea"], styles=photos["brick"], size=64, steps=2, scales=1, model=model, pool="avg")
    assert result.info["style_layers"] == ["features.1", "features.6", "features.11", "features.20", "features.29"]
    assert result.info["content_layer"] == "features.22"
    assert sum(type(m).__name__ == "MaxPool2d" for m in model.net.modules()) == 5  # restored


@pytest.mark.parametrize("styles, kwargs, message", [
    (["brick", "grass"], {"blend": [0.5, 0.3, 0.2]}, "3 blend weight\\(s\\) for 2 style image\\(s\\); give one weight per style image"),
    (["brick"], {"style_layers": "_blocks.1,_block.3"}, "unknown layer '_block.3'.*did you mean"),
    (["brick"], {"content_layer": "features.22"}, "unknown layer 'features.22'"),
    (["brick"], {"preserve_colors": "chroma"}, "use luminance or match"),
    (["brick"], {"init": "random"}, "use content or noise"),
])
def test_style_bad_arguments(embedded, photos, styles, kwargs, message):
    with pytest.raises(SynthvizError, match=message):
        synthviz.style(content=photos["chelsea"], styles=[photos[s] for s in styles], size=64, steps=1, model=embedded, **kwargs)


@pytest.mark.parametrize("make_style, message", [
    (lambda p: resize(p["brick"], 40), "style image 1 is only 40x40 px: too small"),
    (lambda p: torch.cat([p["brick"], torch.ones_like(p["brick"][:, :1])], 1), "4 channel\\(s\\).*drop the alpha"),
    (lambda p: p["brick"][:, :1], "1 channel\\(s\\).*repeat the grey channel"),
    (lambda p: torch.cat([p["brick"], p["grass"]]), "give one image as a \\(1, 3, H, W\\) tensor"),
])
def test_style_bad_images(embedded, photos, make_style, message):
    with pytest.raises(SynthvizError, match=message):
        synthviz.style(content=photos["chelsea"], styles=make_style(photos), size=64, steps=1, model=embedded)


def test_greyscale_style_on_colour_content_warns(embedded, photos):
    grey = photos["brick"]  # brick is a greyscale photo
    with pytest.warns(UserWarning, match="--preserve-colors"):
        synthviz.style(content=photos["chelsea"], styles=grey, size=64, steps=1, scales=1, model=embedded)


def test_style_cli(tmp_path, photos):
    content, s1, s2 = tmp_path / "cat.png", tmp_path / "gravel.png", tmp_path / "tiny.png"
    save_image(resize(photos["chelsea"], 96)[0], content)
    save_image(resize(photos["gravel"], 96)[0], s1)
    save_image(resize(photos["grass"], 32)[0], s2)
    out = tmp_path / "out.png"
    runner = CliRunner()
    ok = runner.invoke(app, ["style", str(content), str(s1), "--size", "64", "--steps", "4", "--scales", "1",
                             "--preserve-colors", "-o", str(out)])
    assert ok.exit_code == 0, ok.output
    assert out.exists() and "content loss" in ok.output

    def one_line_error(args, expected):
        r = runner.invoke(app, ["style", str(content), *args, "--size", "64", "--steps", "1", "-o", str(out)])
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], r.output

    one_line_error([str(s1), str(s1), "--blend", "1,2,3"], "give one weight per style image")
    one_line_error([str(s2)], "too small for style statistics")
    one_line_error([str(s1), "--style-layers", "_blocks.1,conv9"], "unknown layer 'conv9'")
    one_line_error([str(s1), "--preserve-colors", "--color-method", "lab"], "use luminance or match")
    r = runner.invoke(app, ["style", str(content), str(s1), "-o", str(content), "--overwrite"])
    assert r.exit_code == 2 and r.output.strip().startswith("error: output") and "is an input image" in r.output
