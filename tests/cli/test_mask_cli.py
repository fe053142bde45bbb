"""``--mask MASK.png --class C`` end to end on the CLI: a segmentation model registered by name (the
plugin route, ``register_model``), its masked class-score sum against explicit autograd."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from clihelp import one_line_error, run
from tiny import TinySegmenter

import synthviz
from synthviz import targets as T
from synthviz.io import save_image
from synthviz.models import MODELS, Model

CLASSES = ["background", "cat", "dog"]


@pytest.fixture
def segmenter(monkeypatch):
    """``tiny_segmenter``: per-pixel scores of 3 named classes (B, 3, H, W), inputs used as they are."""
    net = TinySegmenter()
    monkeypatch.setitem(MODELS._items, "tiny_segmenter",
                        lambda weights="default": Model(net, mean=None, std=None, classes=CLASSES,
                                                        name="tiny_segmenter", owned=False))
    return net


def test_saliency_cli_with_a_mask_equals_explicit_autograd_of_the_masked_class_sum(tmp_path, segmenter):
    torch.manual_seed(0)
    photo = save_image(torch.rand(3, 48, 48), tmp_path / "photo.png")
    mask = torch.zeros(48, 48)
    mask[8:30, 12:40] = 1
    mask_png = save_image(mask.expand(3, -1, -1), tmp_path / "mask.png")
    out = tmp_path / "seg.png"
    res = run("saliency", photo, "--model", "tiny_segmenter", "--mask", mask_png, "--class", "cat",
              "--methods", "grad_x_input,gradient", "--size", "48", "--device", "cpu", "--out", out)
    assert res.exit_code == 0, res.output
    # independent: the photo as saved, the class-1 scores summed inside the mask, plain autograd
    x = synthviz.load_image(photo).requires_grad_(True)
    with torch.enable_grad():
        score = (segmenter(x)[0, 1] * mask).sum()
        (grad,) = torch.autograd.grad(score, x)
    printed = float(re.search(r"class 1 in mask: (\S+)", res.output).group(1))
    assert printed == pytest.approx(score.item(), rel=1e-3), res.output
    gxi = np.load(tmp_path / "seg-grad_x_input.npy")
    assert gxi.shape == (1, 1, 48, 48)
    assert np.allclose(gxi, (grad * x).sum(1, keepdim=True).detach().numpy(), atol=1e-5)
    assert np.allclose(np.load(tmp_path / "seg-gradient.npy"), grad.abs().amax(1, keepdim=True).numpy(), atol=1e-6)
    # the Python call with the same target gives the same map
    python = synthviz.saliency(Model(segmenter, mean=None, std=None, owned=False), x.detach(),
                               method="grad_x_input", target=T.in_mask(1, mask))
    assert np.allclose(gxi, python.numpy(), atol=1e-6)


def test_classviz_cli_with_a_mask_raises_the_masked_score(tmp_path, segmenter):
    mask = torch.zeros(3, 48, 48)
    mask[:, :24] = 1
    mask_png = save_image(mask, tmp_path / "mask.png")
    res = run("classviz", "--model", "tiny_segmenter", "--mask", mask_png, "--class", "2", "--size", "32",
              "--steps", "20", "--device", "cpu", "--out", tmp_path / "c.png")
    assert res.exit_code == 0, res.output
    start, end = map(float, re.search(r"class 2 in mask: (\S+) at the start, (\S+) at the end", res.output).groups())
    assert end > start + 1.0, res.output
    one_line_error(run("saliency", tmp_path / "c.png", "--model", "tiny_segmenter", "--mask", mask_png,
                       "--out", tmp_path / "s.png"), "--mask needs --class")
