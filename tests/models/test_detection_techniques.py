"""Detectors in every technique (issue 27), on a tiny random Faster R-CNN: a user's own torchvision
detector passed as a module is recognised as a detector (box targets, the pyramid CAM layer) and
left exactly as it was; ``saliency --methods all`` leaves out the methods that cannot apply with a
note; sanity, evaluate and attack-map explain a box target (sanity's first map is saliency's,
evaluate's deletion curve starts at the box score computed by hand and ends at the blurred image's,
attack-map keeps the detection), or say in one line that no detection qualifies (exit 2); the
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
        return fast(net)

    monkeypatch.setattr(dm, "_build", small)


def fast(net: torch.nn.Module) -> torch.nn.Module:
    """Resized to 64 px inside, every proposal kept, 10 proposals and 5 detections (test speed)."""
    net.transform.min_size, net.transform.max_size = (64,), 64
    net.roi_heads.score_thresh = 0.0
    net.rpn._pre_nms_top_n = net.rpn._post_nms_top_n = {"training": 10, "testing": 10}
    net.roi_heads.detections_per_img = 5
    return net


@pytest.fixture(scope="module")
def det():
    """(the random detector, a 48x64 photo on the 8-bit grid, the box target of its top detection)."""
    model = synthviz.load_model(DET, weights="random")
    fast(model.net)
    torch.manual_seed(0)
    x = (torch.rand(1, 3, 48, 64) * 255).round() / 255
    with torch.no_grad():
        found = model(x)[0]
    return model, x, T.box(found["boxes"][0], int(found["labels"][0]))


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


def test_sanity_explains_the_box_target_top_down(det):
    from synthviz.overlay import overlay

    model, x, box = det
    result = synthviz.sanity(model, x, method="gradient", target=box, size=64, depth=1)
    blocks = result.info["blocks"][::-1]  # randomization_blocks, top down as sanity randomizes them
    assert blocks[:2] == ["roi_heads.box_predictor", "roi_heads.box_head"]
    assert blocks[-1] == "backbone.body.0.0"
    first = {part: min(i for i, b in enumerate(blocks) if b.startswith(part))
             for part in ("roi_heads", "rpn.head", "backbone.fpn", "backbone.body")}
    assert first["roi_heads"] < first["rpn.head"] < first["backbone.fpn"] < first["backbone.body"]
    assert result.info["layers"] == ["original", "roi_heads.box_predictor"] and result.info["cls"] is None
    assert result.info["target"] == box.name
    reference = synthviz.attribute(model, x, "gradient", target=box)  # saliency's map of the same box
    assert reference.maps.abs().max() > 0
    assert torch.allclose(result.images[:1], overlay(x, reference.maps, reference.display), atol=1e-6)


def test_evaluate_follows_the_box_score(det, monkeypatch):
    from synthviz.evaluation import run as evaluation
    from synthviz.evaluation.curves import blurred

    model, x, box = det
    monkeypatch.setattr(evaluation, "DRAWS", 1)  # one random reference map instead of 8 (test speed)
    ev = evaluation.evaluate_images(model, x, "gradient", size=64, checks="invariance", curve_steps=1, target=box,
                                    samples=2)
    row = ev.rows[0]
    assert row["method"] == "gradient" and row["target"] == box.name
    assert "invariance: skipped" in row["notes"]
    with torch.no_grad():  # by hand: the box target on the intact and on the fully blurred photo
        intact, gone = float(box(model(x))[0]), float(box(model(blurred(x)))[0])
    curve = ev.curves[("gradient", row["image"])]["deletion"]
    assert intact > 1.0 and curve[0] == pytest.approx(intact, rel=1e-5) and curve[-1] == pytest.approx(gone, abs=1e-5)


def test_attack_map_keeps_the_detection(det):
    from synthviz.evaluation.smooth import _RoIAlign

    model, x, box = det
    result = synthviz.attack_map(model, x, method="gradcam", target=box, size=64, steps=1, epsilon="4/255")
    info = result.info
    with torch.no_grad():
        before, after = float(box(model(x))[0]), float(box(model(result.images))[0])
    assert info["class"] == box.name and info["probability_before"] == pytest.approx(before, rel=1e-5)
    assert info["label_kept"] and info["probability_after"] == pytest.approx(after, rel=1e-5) and after > 0
    assert info["linf"] <= 4 / 255 + 1e-6 and "score" in info["report"]
    # the twice-differentiable RoIAlign the attack's second derivatives go through, against finite differences
    features = torch.rand(1, 2, 6, 6, dtype=torch.double, requires_grad=True)
    rois = torch.tensor([[0, 0.5, 0.3, 4.2, 5.1], [0, 1, 1, 3, 3]], dtype=torch.double)
    assert torch.autograd.gradgradcheck(lambda f: _RoIAlign.apply(f ** 2, rois, 1.0, 2, 2, 2, False) ** 2, (features,))


@pytest.mark.parametrize("command", ["sanity", "evaluate", "attack-map"])
def test_no_qualifying_detection_is_one_line(command, photo, tmp_path, small_builds):
    out = ["--out", tmp_path / ("o" if command == "evaluate" else "o.png")]
    one_line_error(run(command, photo, *FLAGS, *out), "no detection scores 0.5 or more", "lower --min-score")
    if command == "sanity":
        one_line_error(run(command, photo, *FLAGS, "--box", "0,0,3,3", "--class", 1, *out),
                       "no detection of class 1 'person' overlaps the box 0,0,3,3")


def test_sanity_cli_explains_the_best_detection(photo, tmp_path, small_builds):
    result = run("sanity", photo, *FLAGS, "--min-score", 0, "--depth", 1, "--out", tmp_path / "s.png")
    assert result.exit_code == 0, result.output
    assert "5 detections qualify; explaining the best: class" in result.output
    assert (tmp_path / "s.png").exists() and (tmp_path / "s.csv").read_text().count("\n") == 3


def test_index_runs_on_the_feature_pyramid(photo, tmp_path, small_builds):
    result = run("index", photo.parent, *FLAGS, "--out", tmp_path / "idx")
    assert result.exit_code == 0, result.output
    assert "indexed 1 images" in result.output and "backbone.pyramid" in result.output
