"""Presets: every shipped preset loads and renders; keys are validated against the technique's
signature with one-line errors; `synthviz presets`, `presets show` and `run` work from the CLI."""

from __future__ import annotations

import sys
import tomllib

import pytest
import torch
from typer.testing import CliRunner

from synthviz.cli import app
from synthviz.errors import SynthvizError
from synthviz.io import load_image
from synthviz.result import Result
from synthviz.presets import (list_presets, load_preset, parse_set, preset_names,
                              resolve_value, run_preset, technique_parameters)

runner = CliRunner()

# tiny renders: each key is passed only to the techniques that take it
FAST = {"size": 64, "steps": 3, "octaves": 2, "example_size": 64, "scales": 1, "samples": 2}
EXTRA = {
    "channel-grid": {"units": "0-3"},
    "invert-layers": {"layers": ["_blocks.1", "_blocks.5"]},
    "sanity-cascade": {"tile": 32},
}
NEEDS_DOWNLOAD = {"style-vgg19"}  # its weights cannot be downloaded here: see the last test


def fast(name: str) -> dict:
    allowed = technique_parameters(load_preset(name).technique)
    return {**{k: v for k, v in FAST.items() if k in allowed}, **EXTRA.get(name, {})}


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output  # one line (torch may also print its "Downloading" note)
    return errors[0]


def test_the_issue_presets_are_shipped():
    names = set(preset_names())
    for name in ("classviz-lucid", "classviz-classic", "channel-grid", "deepdream-octaves", "invert-layers",
                 "texture-tileable", "style-vgg19", "style-offline", "fool-budgeted", "saliency-compare"):
        assert name in names


@pytest.mark.filterwarnings("ignore:not fooled")  # 3 steps are too few to fool; the render itself is checked
@pytest.mark.parametrize("name", [n for n in preset_names() if n not in NEEDS_DOWNLOAD])
def test_every_shipped_preset_renders(name):
    preset = load_preset(name)
    if not preset.available:
        pytest.skip(f"technique {preset.technique} is not installed")
    result = run_preset(name, fast(name))
    assert isinstance(result, Result) and result.technique == preset.technique
    images = result.images
    assert images.dim() == 4 and images.shape[1] == 3
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    assert images.std() > 1e-3, "a blank picture"
    figure = result.picture()
    assert figure.dim() == 3 and figure.shape[0] == 3
    if len(result.history):  # an optimization: one objective per batch element, finite
        assert result.history.shape[1] == len(images) and torch.isfinite(result.values).all()
    if result.figure is None and len(result.history):
        assert max(images.shape[-2:]) == 64, "size override ignored"
    if name == "channel-grid":
        assert result.info["units"] == [0, 1, 2, 3] and len(images) == 4


def test_unknown_key_suggests_the_closest_keys():
    with pytest.raises(SynthvizError, match=r"unknown key 'sise' for technique classviz \(did you mean: size"):
        run_preset("classviz-lucid", {"sise": 64})


def test_wrong_type_names_the_key_and_the_expected_type():
    with pytest.raises(SynthvizError, match=r"'steps' must be int, not str 'many'"):
        run_preset("classviz-lucid", {"steps": "many"})
    with pytest.raises(SynthvizError, match=r"'tileable' must be bool, not int 1"):
        run_preset("texture-tileable", {"tileable": 1})
    with pytest.raises(SynthvizError, match=r"'layers' must be str or list of str, not list \[1, 2\]"):
        run_preset("invert-layers", {"layers": [1, 2]})
    # an int is a valid float; a class may be an index or a name
    assert load_preset("classviz-lucid").with_params({"lr": 1, "target": 1}).params["lr"] == 1


def test_missing_required_key_is_named(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('technique = "dream"\n[params]\nmodel = "efficientnet_lite0"\n')
    with pytest.raises(SynthvizError, match=r"technique dream needs 'image'"):
        run_preset(path)


def test_set_values_are_read_as_toml_then_text():
    assert parse_set(["size=64", "lr=0.5", "tileable=true", "target=tabby", "units=[0, 3]", "label='a b'"]) == {
        "size": 64, "lr": 0.5, "tileable": True, "target": "tabby", "units": [0, 3], "label": "a b"}
    with pytest.raises(SynthvizError, match="key=value"):
        parse_set(["size"])


def test_skimage_values_resolve_to_images_and_errors_are_one_line(monkeypatch):
    cat = resolve_value("skimage:chelsea")
    assert cat.shape == (1, 3, 300, 451) and cat.is_contiguous()
    assert resolve_value(["skimage:coffee", "x.png"])[1] == "x.png"
    with pytest.raises(SynthvizError, match=r"unknown scikit-image sample 'chelsee' \(did you mean: chelsea"):
        resolve_value("skimage:chelsee")
    monkeypatch.setitem(sys.modules, "skimage", None)  # scikit-image not installed
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(SynthvizError, match=r"needs scikit-image: pip install scikit-image"):
        resolve_value("skimage:chelsea")


def test_presets_command_lists_one_line_each_and_show_prints_the_toml():
    result = run("presets")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == len(list_presets())
    assert any(line.startswith("classviz-lucid ") and "classviz" in line for line in lines)
    shown = run("presets", "show", "texture-tileable")
    assert shown.exit_code == 0
    data = tomllib.loads(shown.output)
    assert data["technique"] == "texture" and data["params"]["tileable"] is True
    assert "did you mean: texture-tileable" in error_line(run("presets", "show", "texture-tilable"))


def test_run_renders_a_preset_with_overrides_and_a_video(tmp_path):
    out, video = tmp_path / "cat.png", tmp_path / "cat.gif"
    result = run("run", "classviz-lucid", "--set", "size=64", "--set", "steps=4", "-o", out, "--video", video)
    assert result.exit_code == 0, result.output
    assert load_image(out).shape == (1, 3, 64, 64)
    import imageio.v3 as iio

    assert iio.imread(video).shape[0] >= 2  # frames of the optimization
    assert "logit(285)" in result.output
    line = error_line(run("run", "classviz-lucid", "--set", "sise=64", "-o", tmp_path / "x.png"))
    assert "did you mean: size" in line and not (tmp_path / "x.png").exists()
    assert "'size' must be int" in error_line(run("run", "classviz-lucid", "--set", "size=big"))


def test_a_users_toml_file_works_where_a_name_does(tmp_path, chelsea128):
    from synthviz.io import save_image

    (tmp_path / "photos").mkdir()
    save_image(chelsea128, tmp_path / "photos" / "cat.png")
    preset = tmp_path / "my-invert.toml"  # the image path is relative to the preset file
    preset.write_text('description = "mine"\ntechnique = "invert"\n[params]\nimage = "photos/cat.png"\n'
                      'layer = "_blocks.3"\nsize = 64\nsteps = 3\n')
    out = tmp_path / "out.png"
    result = run("run", preset, "-o", out)
    assert result.exit_code == 0, result.output
    assert load_image(out).shape[-1] > 64  # the grid: original beside the inversion
    shown = run("presets", "show", preset)
    assert shown.exit_code == 0 and 'image = "photos/cat.png"' in shown.output
    assert "preset file not found" in error_line(run("run", tmp_path / "nope.toml"))


def test_style_vgg19_loads_and_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    preset = load_preset("style-vgg19")
    assert preset.params["model"] == "vgg19" and preset.params["pool"] == "avg"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached weights
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # and no network, even where there is one
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    line = error_line(run("run", "style-vgg19", "--set", "size=64", "-o", tmp_path / "v.png"))
    assert "could not download the weights of vgg19" in line and "--weights PATH" in line
    assert not (tmp_path / "v.png").exists()
