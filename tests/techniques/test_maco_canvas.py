"""MaCo as horama runs it: a canvas larger than the model's input, several random crops per step,
the whole canvas as the result; in Python, in the registered techniques and on the CLI."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from clihelp import one_line_error, run
from tiny import tiny_vit

import synthviz
from synthviz.engine import score_views
from synthviz.errors import SynthvizError
from synthviz.layers import Tap
from synthviz.maco import canvas_size, random_crops
from synthviz.models import load_model
from synthviz.objectives import Objective


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread for these tests: on a shared 2-core machine two threads spin and run ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_random_crops_make_n_views_per_image_view_major():
    x = torch.rand(2, 3, 64, 64)
    views = random_crops(32, scale=(1.0, 1.0), noise=0.0, n=3)(x)  # whole-canvas "crops": a plain resize
    assert views.shape == (6, 3, 32, 32)
    small = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    for j in range(3):  # row j·B + i is view j of image i
        assert torch.allclose(views[2 * j:2 * j + 2], small, atol=1e-5)
    crops = random_crops(32, n=4)(x)
    assert crops.shape == (8, 3, 32, 32) and not torch.allclose(crops[0], crops[2], atol=0.05)


def test_score_views_averages_each_images_views_and_keeps_batch_indices():
    image = torch.zeros(2, 3, 8, 8)
    acts = {"l": torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])}  # 3 views of 2 images
    plain = Objective(lambda c: c["l"][:, 0], "l", ["l"])
    assert torch.allclose(score_views(plain, image, acts), torch.tensor([(1 + 3 + 5) / 3, (2 + 4 + 6) / 3]))
    second = Objective(lambda c: c["l"][:, 0], "l@1", ["l"], batch=1)
    assert torch.allclose(score_views(second, image, acts), torch.tensor([0.0, 4.0]))
    assert torch.equal(score_views(plain, image, {"l": acts["l"][:2]}), torch.tensor([1.0, 2.0]))  # one view


def test_canvas_sizes():
    assert canvas_size((32, 32)) == (64, 64) and canvas_size((224, 224)) == (448, 448)
    assert canvas_size((300, 300)) == (512, 512) and canvas_size((600, 600)) == (600, 600)  # capped, never below
    assert canvas_size((224, 224), 1280) == (1280, 1280) and canvas_size((100, 200), 400) == (200, 400)
    with pytest.raises(SynthvizError, match="smaller than the model's input"):
        canvas_size((224, 224), 100)


def test_probe_renders_the_whole_canvas_from_several_crops_and_raises_the_channel():
    m = load_model(tiny_vit())
    layer = "encoder.layers.encoder_layer_1"

    def quadrants(images):  # the channel on the canvas's four input-sized quadrants, by an independent Tap
        tiles = [images[..., i:i + 32, j:j + 32] for i in (0, 32) for j in (0, 32)]
        with torch.no_grad(), Tap(m, [layer]) as tap:
            return torch.stack([tap(t)[layer][:, 3].mean() for t in tiles]).mean().item()

    start = synthviz.probe(m, layer, 3, recipe="maco", canvas=64, crops=4, steps=1)
    end = synthviz.probe(m, layer, 3, recipe="maco", canvas=64, crops=4, steps=30)
    assert end.images.shape == (1, 3, 64, 64) and end.info["size"] == [32, 32]  # the ViT's input: 32
    assert end.info["canvas"] == [64, 64] and end.info["crops"] == 4
    history = end.history.reshape(-1)  # the mean over each step's 4 random crops
    assert history[-5:].mean() > history[:5].mean() + 0.25
    assert quadrants(end.images) > quadrants(start.images) + 0.1, (quadrants(start.images), quadrants(end.images))
    default = synthviz.classviz(m, 3, recipe="maco", steps=1)
    assert default.images.shape == (1, 3, 64, 64) and default.info["crops"] == 1  # twice the input by default


def test_cli_writes_the_canvas_and_refuses_canvas_options_elsewhere(tmp_path):
    out = tmp_path / "probe.png"
    res = run("probe", "_blocks.3", "2", "--recipe", "maco", "--size", "32", "--canvas", "80", "--crops", "2",
              "--steps", "2", "--device", "cpu", "--out", out)
    assert res.exit_code == 0, res.output
    assert synthviz.load_image(out).shape[-2:] == (80, 80)
    out = tmp_path / "class.png"
    res = run("classviz", "1", "--recipe", "maco", "--size", "32", "--crops", "3", "--steps", "2", "--device", "cpu",
              "--out", out)
    assert res.exit_code == 0, res.output
    assert synthviz.load_image(out).shape[-2:] == (64, 64)  # default canvas: twice the size
    out = tmp_path / "lucid.png"  # --crops on the lucid recipe: crop views of the image itself
    res = run("classviz", "1", "--size", "32", "--crops", "2", "--steps", "2", "--device", "cpu", "--out", out)
    assert res.exit_code == 0, res.output
    assert synthviz.load_image(out).shape[-2:] == (32, 32)
    one_line_error(run("probe", "_blocks.3", "2", "--canvas", "64", "--out", tmp_path / "x.png"), "--recipe maco")
    one_line_error(run("classviz", "--recipe", "maco", "--size", "64", "--canvas", "32", "--out", tmp_path / "y.png"),
                   "smaller than the model's input")
