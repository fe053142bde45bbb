"""The bad-input matrix (issue 11): every bad value is one line naming the problem, through the
CLI (non-zero exit, no traceback, warnings counted as lines) and through Python (the right
:class:`~synthviz.errors.SynthvizError` subclass), with the same rules for both."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torch import nn

import synthviz
from synthviz import objectives as obj
from synthviz.errors import BadImage, BadModel, BadValue, SynthvizError, TooLarge, WriteError
from synthviz.io import save_image
from synthviz.params import PixelImage

from clihelp import run


def one_line(result, *fragments) -> str:
    """Non-zero exit, no traceback, exactly one line (notes included), naming the problem."""
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def nan_tiff(tmp_path_factory):
    path = tmp_path_factory.mktemp("nan") / "nan.tiff"
    a = np.full((48, 48, 3), 0.5, np.float32)
    a[5, 5, 1] = np.nan
    iio.imwrite(path, a)
    return path


@pytest.fixture(scope="module")
def nan_weights(tmp_path_factory, embedded):
    path = tmp_path_factory.mktemp("w") / "nan.pth"
    state = {k: v.clone() for k, v in embedded.net.state_dict().items()}
    next(v for k, v in state.items() if k.endswith("weight"))[0].fill_(float("nan"))
    torch.save(state, path)
    return path


CLI = [
    (["classviz", "--steps", "0"], ["steps must be positive, not 0"]),
    (["classviz", "--steps", "-5"], ["steps must be positive, not -5"]),
    (["classviz", "--lr", "0"], ["lr must be positive"]),
    (["classviz", "--lr", "nan"], ["lr must be a finite number"]),
    (["classviz", "--lr", "-0.05"], ["lr must be positive"]),
    (["classviz", "--score", "prob"], ["unknown score 'prob'", "logit, logprob"]),
    (["classviz", "-1"], ["-1", "not a valid class"]),
    (["classviz", "--", "-1"], ["class -1 is out of range", "0..999"]),
    (["classviz", "--size", "100000"], ["needs about", "GiB", "smaller --size"]),
    (["classviz", "--size", "abc"], ["--size"]),
    (["probe", "_blocks.8", "3-1"], ["runs backwards", "1-3"]),
    (["probe", "_blocks.8", ","], ["no units in ','"]),
    (["probe", "_blocks.8", "0", "--batch-size", "0"], ["batch_size must be positive"]),
    (["probe", "_blocks.8", "0", "--x", "1"], ["--neuron"]),
    (["probe", "_blocks.8", "0", "--lr", "nan"], ["lr must be a finite number"]),
]


@pytest.mark.parametrize("args,fragments", CLI, ids=[" ".join(a) for a, _ in CLI])
def test_cli_render_options(args, fragments, tmp_path):
    out = tmp_path / "x.png"
    one_line(run(*args[:1], "--out", out, *args[1:]) if args[1:2] != ["--"] else run(args[0], "--out", out, *args[1:]),
             *fragments)
    assert not out.exists()


PHOTO_CLI = [
    (["saliency", "{cat}", "--size", "0"], ["size must be positive, not 0"]),
    (["saliency", "{cat}", "--methods", "occlusion", "--value", "5"], ["value must be in [0, 1], not 5"]),
    (["saliency", "{cat}", "--classviz-steps", "-1"], ["classviz_steps must be positive, not -1"]),  # even without --with-classviz
    (["saliency", "{nan}"], ["NaN/inf"]),
    (["sanity", "{cat}", "--depth", "0"], ["depth must be positive"]),
    (["fool", "{cat}", "--epsilon", "300/255"], ["at most 64/255"]),
    (["fool", "{cat}", "--epsilon", "300"], ["at most 64/255"]),
    (["fool", "{cat}", "--epsilon", "3"], ["did you mean 3/255?"]),
    (["dream", "{cat}", "--lr", "nan"], ["lr must be a finite number"]),
    (["texture", "{cat}", "--lr", "-1"], ["lr must be positive"]),
    (["classviz", "--weights", "{nan_weights}"], ["NaN/inf", "--weights"]),
    (["classviz", "--out", "{tmp}/x.xyz"], ["cannot write", "x.xyz", ".png"]),
]


@pytest.mark.parametrize("args,fragments", PHOTO_CLI, ids=[" ".join(a) for a, _ in PHOTO_CLI])
def test_cli_photo_options(args, fragments, cat_png, nan_tiff, nan_weights, tmp_path):
    names = {"cat": cat_png, "nan": nan_tiff, "nan_weights": nan_weights, "tmp": tmp_path}
    args = [a.format(**names) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "x.png")]
    line = one_line(run(*args), *fragments)
    if "300/255" in args:
        assert "did you mean" not in line  # 300/255 is already in [0, 1] units: no "/255" hint
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing written


def test_gallery_workers_0_creates_no_folder(tmp_path):
    out = tmp_path / "g"
    one_line(run("gallery", "--workers", "0", "--out", out), "--workers")
    assert not out.exists()
    with pytest.raises(BadValue):
        synthviz.gallery.build_gallery(None, out, workers=0)
    assert not out.exists()


def test_gallery_default_out_is_not_the_committed_folder():
    import inspect

    from synthviz.cli.gallery import gallery_cmd

    default = inspect.signature(gallery_cmd).parameters["out"].default
    assert str(default) == "synthviz-gallery"
    assert inspect.signature(synthviz.gallery.build_gallery).parameters["out"].default == "synthviz-gallery"


def test_version_and_usage_errors_are_one_line():
    result = run("--version")
    assert result.exit_code == 0 and result.output.strip() == f"synthviz {synthviz.__version__}"
    one_line(run("classviz", "--no-such-option"), "No such option")
    one_line(run("nosuchcommand"), "No such command")


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).relu().mean((2, 3)))


def test_python_api_raises_the_right_subclass(embedded, chelsea128):
    m = embedded
    cases = [
        (BadValue, "a class is an index", lambda: synthviz.classviz(m, 2.5, steps=1, size=32)),
        (BadValue, "no class given", lambda: synthviz.classviz(m, None, steps=1, size=32)),
        (BadValue, "batch must be positive", lambda: synthviz.classviz(m, 285, batch=0, steps=1, size=32)),
        (BadValue, "steps must be positive", lambda: synthviz.classviz(m, 285, steps=0, size=32)),
        (BadValue, "steps must be positive", lambda: synthviz.classviz(m, 285, steps=-5, size=32)),
        (BadValue, "lr must be positive", lambda: synthviz.classviz(m, 285, lr=0, steps=1, size=32)),
        (BadValue, "lr must be a finite", lambda: synthviz.classviz(m, 285, lr=float("nan"), steps=1, size=32)),
        (BadValue, "unknown score", lambda: synthviz.classviz(m, 285, score="prob", steps=1, size=32)),
        (TooLarge, "needs about", lambda: synthviz.classviz(m, 285, size=100_000, steps=1)),
        (BadValue, "runs backwards", lambda: synthviz.probe(m, "_blocks.8", "3-1", steps=1, size=32)),
        (BadValue, "no units", lambda: synthviz.probe(m, "_blocks.8", ",", steps=1, size=32)),
        (BadValue, "batch_size", lambda: synthviz.probe(m, "_blocks.8", 0, batch_size=0, steps=1, size=32)),
        (BadValue, "neuron", lambda: synthviz.probe(m, "_blocks.8", 0, x=1, steps=1, size=32)),
        (BadValue, "channel 999 is out of range for _blocks.8 (112 channels)",
         lambda: synthviz.render(m, obj.channel("_blocks.8", 999), PixelImage(1, 32), steps=1)),
        (BadValue, "size must be positive", lambda: synthviz.saliency(m, chelsea128, size=0)),
        (BadValue, "value must be in [0, 1]", lambda: synthviz.saliency(m, chelsea128, method="occlusion", value=5)),
        (BadImage, "NaN/inf", lambda: synthviz.saliency(m, chelsea128.clone().index_fill_(2, torch.tensor([3]), float("nan")))),
        (BadImage, "NaN/inf", lambda: synthviz.dream(m, torch.full((1, 3, 64, 64), float("inf")), steps=1)),
        (BadImage, "divide it by 255", lambda: synthviz.saliency(m, (chelsea128 * 255).byte())),
        (BadImage, "divide it by 255", lambda: save_image((chelsea128 * 255).byte(), "/tmp/never-written.png")),
        (BadValue, "at most 64/255", lambda: synthviz.fool(m, chelsea128, epsilon="300/255", steps=1)),
    ]
    for kind, fragment, call in cases:
        with pytest.raises(kind, match=None) as caught:
            call()
        assert isinstance(caught.value, SynthvizError)
        message = str(caught.value)
        assert fragment in message and "\n" not in message, (fragment, message)


def test_non_finite_weights_are_refused_when_the_model_is_loaded(tmp_path):
    net = BNNet()
    with torch.no_grad():
        net.bn.running_var[1] = float("inf")
    with pytest.raises(BadModel, match="NaN/inf values in bn.running_var"):
        synthviz.classviz(net, 3, steps=1, size=32)
    with pytest.raises(BadModel, match="NaN/inf"):
        synthviz.load_model(net)


def test_save_image_refuses_an_unknown_extension_instead_of_renaming(tmp_path, chelsea128):
    with pytest.raises(SynthvizError, match="x.xyz"):
        save_image(chelsea128, tmp_path / "x.xyz")
    assert list(tmp_path.iterdir()) == []
    assert save_image(chelsea128, tmp_path / "x.png") == tmp_path / "x.png"


def test_write_error_is_a_write_error(tmp_path, chelsea128, monkeypatch):
    import errno
    import os

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # a full disk often shows only when the data is flushed

    with pytest.raises(WriteError, match="could not write .*x.png: No space left on device"):
        save_image(chelsea128, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
