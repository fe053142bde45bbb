"""The core CLI: listings, renders, and one-line errors for every bad input."""

from __future__ import annotations

import pytest
import torch

from synthviz.io import load_image

from clihelp import one_line_error, run


def test_models_lists_the_embedded_model_first():
    result = run("models")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("efficientnet_lite0") and "resnet50" in lines


def test_layers_prints_names_with_shapes():
    result = run("layers", "efficientnet_lite0", "--size", "128")
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if line.startswith("_blocks.8 "))
    assert "(112, 8, 8)" in line


def test_classes_grep():
    result = run("classes", "--grep", "egyptian")
    assert result.output.split() == ["285", "Egyptian", "cat"]


def test_classviz_cli_writes_png_and_gif_without_overwriting(tmp_path):
    out, video = tmp_path / "cat.png", tmp_path / "cat.gif"
    result = run("classviz", "Egyptian cat", "--size", "64", "--steps", "4", "--out", out, "--video", video)
    assert result.exit_code == 0, result.output
    assert load_image(out).shape == (1, 3, 64, 64) and video.stat().st_size > 0
    first = out.read_bytes()
    result = run("classviz", "285", "--size", "64", "--steps", "2", "--out", out)
    assert result.exit_code == 0 and (tmp_path / "cat-1.png").exists()
    assert out.read_bytes() == first  # the first render is untouched


def test_probe_cli_grid(tmp_path):
    out = tmp_path / "grid.png"
    result = run("probe", "_blocks.2", "0-3", "--size", "48", "--steps", "3", "--out", out)
    assert result.exit_code == 0, result.output
    grid = load_image(out)
    assert grid.shape[-1] > 2 * 48 and grid.shape[-2] > 2 * 48  # 2x2 labelled tiles


def test_neuron_cli(tmp_path):
    out = tmp_path / "n.png"
    result = run("probe", "_blocks.5", "3", "--neuron", "--x", "1", "--y", "2", "--size", "64", "--steps", "2", "--out", out)
    assert result.exit_code == 0, result.output
    assert load_image(out).shape == (1, 3, 64, 64)


@pytest.fixture
def bad_weights(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong)
    return corrupt, wrong


@pytest.mark.parametrize("args,fragments", [
    (["classviz", "--model", "resnet5O"], ["unknown model 'resnet5O'", "resnet50", "synthviz models"]),
    (["probe", "_blocks.99"], ["unknown layer '_blocks.99'", "synthviz layers"]),
    (["probe", "_blocks.8", "500"], ["channel 500 is out of range", "0..111"]),
    (["probe", "_blocks.8", "3", "--neuron", "--x", "40"], ["neuron (40, 4) is outside", "x 0..7"]),
    (["classviz", "tabbby"], ["unknown class 'tabbby'", "tabby"]),
    (["classviz", "cat"], ["ambiguous", "'Egyptian cat' (285)"]),
    (["classviz", "1000"], ["class 1000 is out of range", "0..999"]),
    (["classviz", "--weights", "/nonexistent/w.pth"], ["weights file not found"]),
    (["classviz", "--size", "16"], ["image size 16 is too small", "--size 32"]),
    (["classviz", "--device", "cuda:0"] if not torch.cuda.is_available() else ["classviz", "--device", "tpu"],
     ["device"]),
])
def test_bad_input_gets_one_line(args, fragments, tmp_path):
    one_line_error(run(*args, "--steps", "1", "--out", tmp_path / "x.png"), *fragments)


def test_bad_weights_files(bad_weights, tmp_path):
    corrupt, wrong = bad_weights
    one_line_error(run("classviz", "--weights", corrupt, "--steps", "1", "--out", tmp_path / "a.png"),
                   "cannot read weights file")
    one_line_error(run("classviz", "--weights", wrong, "--steps", "1", "--out", tmp_path / "b.png"),
                   "does not fit model efficientnet_lite0")


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    one_line_error(run("classviz", "--steps", "1", "--out", blocker / "out.png"), "--out")
    one_line_error(run("classviz", "--steps", "1", "--out", tmp_path / "out.txt"), "cannot write", ".png")


def test_ctrl_c_saves_the_image_as_it_stands(tmp_path, monkeypatch):
    from synthviz.callbacks import ProgressBar

    def interrupt(self, info):
        if info.step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBar, "__call__", interrupt)
    out = tmp_path / "stopped.png"
    result = run("classviz", "285", "--size", "48", "--steps", "50", "--out", out)
    assert result.exit_code == 130
    assert "interrupted: saved the image as it stood" in result.output
    assert load_image(out).shape == (1, 3, 48, 48)


def test_ctrl_c_anywhere_exits_130_in_one_line(monkeypatch):
    # a command with no Ctrl-C handling of its own (`models`): Click's Abort becomes 130, one line
    import synthviz.cli.models as models_cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(models_cli, "list_models", interrupted)
    result = run("models")
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "Traceback" not in result.output
