"""Detectors in every technique (issue 27), on a tiny random Faster R-CNN: a user's own torchvision
detector passed as a module is recognised as a detector (box targets, the pyramid CAM layer) and
left exactly as it was; ``saliency --methods all`` leaves out the methods that cannot apply with a
note; sanity, evaluate and attack-map (which explain a class) say so in one line (exit 2); the
dataset index runs on the detector's feature pyramid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

import synthviz
from synthviz import targets as T
from tests.clihelp import one_line_error, run

DET = "fasterrcnn_mobilenet_v3_large_320_fpn"
FLAGS = ("--model", DET, "--weights", "random", "--size", 64)


@pytest.fixture
def small_builds(monkeypatch):
    """Every detector synthviz builds here resizes to 64 px inside and keeps every proposal."""
    import synthviz.detection_models as dm

    build = dm._build

    def small(name, weights):
        net = build(name, weights)
        net.transform.min_size, net.transform.max_size = (64,), 64
        net.roi_heads.score_thresh = 0.0
        return net

    monkeypatch.setattr(dm, "_build", small)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    import imageio.v3 as iio

    folder = tmp_path_factory.mktemp("det-photos")
    rng = np.random.default_rng(0)
    iio.imwrite(folder / "a.png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return folder / "a.png"


def users_detector() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)
    net.transform.min_size, net.transform.max_size = (64,), 64
    net.roi_heads.score_thresh = 0.0
    return net


def test_a_users_detector_module_is_a_detector_and_left_as_it_was():
    net = users_detector().train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    names = [n for n, _ in net.named_modules()]
    model = synthviz.load_model(net)
    assert model.task == "detection" and model.layers["gradcam"] == "backbone.pyramid"
    assert model.classes[1] == "person"  # COCO's 91 classes
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        found = model(x)[0]
    target = T.box(found["boxes"][0], int(found["labels"][0]))
    ours = synthviz.attribute(model, x, "gradient", target=target, reduce="none").raw
    net.eval()  # autograd of the same score on the user's own module
    xx = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(target(net(xx)).sum(), xx)
    assert torch.allclose(ours, grad, rtol=1e-4, atol=1e-6 * float(grad.abs().max()))
    cam = synthviz.attribute(model, x, "gradcam", target=target)
    assert cam.maps.shape == (1, 1, 48, 64) and cam.info["layer"] == "backbone.pyramid"
    assert [n for n, _ in net.named_modules()] == names and not net.backbone._forward_hooks  # no pyramid added
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert all(p.requires_grad for p in net.parameters())


def test_saliency_all_leaves_out_what_cannot_apply(monkeypatch, capsys):
    from synthviz.techniques import saliency_figure as sf

    model = synthviz.load_model(users_detector())
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        found = model(x)[0]
    target = T.box(found["boxes"][0], int(found["labels"][0]))
    # "all" on a detector: Score-CAM alone takes minutes (768 pyramid channels); two methods stand in
    monkeypatch.setattr(sf, "method_names", lambda methods: ["gradient", "cam"])
    result, maps = sf.figure_and_maps(model, x, "all", target, size=64, progress=True)
    assert list(maps) == ["gradient"] and result.info["methods"] == ["gradient"]
    assert any(line.startswith("cam: skipped (cam needs a model that ends in global average pooling")
               for line in result.info["lines"])
    assert "cam: skipped" in capsys.readouterr().err
    with pytest.raises(synthviz.errors.SynthvizError, match="global average pooling"):
        sf.figure_and_maps(model, x, "gradient,cam", target, size=64)  # named: its own one line


@pytest.mark.parametrize("command", ["sanity", "evaluate", "attack-map"])
def test_class_techniques_refuse_a_detector_in_one_line(command, photo, tmp_path, small_builds):
    out = ["--out", tmp_path / ("o" if command == "evaluate" else "o.png")]
    one_line_error(run(command, photo, *FLAGS, *out), f"{command} explains a classifier's class",
                   f"synthviz saliency IMAGE --model {DET} --box")


def test_index_runs_on_the_feature_pyramid(photo, tmp_path, small_builds):
    result = run("index", photo.parent, *FLAGS, "--out", tmp_path / "idx")
    assert result.exit_code == 0, result.output
    assert "indexed 1 images" in result.output and "backbone.pyramid" in result.output
