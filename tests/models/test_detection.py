"""torchvision detectors and segmenters by name (random weights, no download): the feature
pyramid layer changes nothing the detector computes (outputs and input gradients equal a plain
torchvision build), a box target equals pytorch-grad-cam 1.5.7's FasterRCNNBoxScoreTarget on the
same detections, Grad-CAM on the pyramid equals a hand computation on the backbone's levels, and
a DeepLabV3 mask target equals the hand sum."""

from __future__ import annotations

import pytest
import torch
import torchvision

import synthviz
from synthviz import targets as T
from synthviz.checkpoints import seeded_init
from synthviz.errors import BadValue
from tests.clihelp import one_line_error, run

DET = "fasterrcnn_mobilenet_v3_large_320_fpn"
SEG = "deeplabv3_mobilenet_v3_large"


def plain(name: str) -> torch.nn.Module:
    """torchvision's own build of ``name`` with the same random weights synthviz builds."""
    with seeded_init():
        return small(torchvision.models.get_model_builder(name)(weights=None, weights_backbone=None).eval())


def small(net: torch.nn.Module) -> torch.nn.Module:
    """A detector resizing its input to 128 px inside instead of 320 (test speed)."""
    if hasattr(net, "roi_heads"):
        net.transform.min_size, net.transform.max_size = (128,), 128
    return net


@pytest.fixture
def small_builds(monkeypatch):
    """Every detector synthviz builds in the test resizes to 128 px inside."""
    import synthviz.detection_models as dm

    build = dm._build
    monkeypatch.setattr(dm, "_build", lambda name, weights: small(build(name, weights)))


@pytest.fixture(scope="module")
def detector():
    """The random detector with every proposal kept (its scores are ~1/91, below the 0.05 default)."""
    model = synthviz.load_model(DET, weights="random")
    small(model.net)
    model.net.roi_heads.score_thresh = 0.0
    model.net.roi_heads.detections_per_img = 20
    return model


@pytest.fixture(scope="module")
def reference():
    ref = plain(DET)
    ref.roi_heads.score_thresh, ref.roi_heads.detections_per_img = 0.0, 20
    return ref


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(3)
    return torch.rand(1, 3, 128, 128)


def test_pyramid_layer_leaves_outputs_and_input_gradients_as_torchvision(detector, image, reference):
    ref = reference
    x = image.clone().requires_grad_(True)
    theirs = ref(x)
    with torch.no_grad():
        ours = detector(image)[0]
    assert len(ours["boxes"]) > 0
    for key in ("boxes", "labels", "scores"):
        assert torch.equal(ours[key], theirs[0][key].detach())
    target = T.box(ours["boxes"][0], int(ours["labels"][0]))
    (grad,) = torch.autograd.grad(target(theirs).sum(), x)
    ours = synthviz.attribute(detector, image, "gradient", target=target, reduce="none").raw
    assert torch.allclose(ours, grad, rtol=1e-4, atol=1e-6 * float(grad.abs().max()))


def test_box_target_equals_pytorch_grad_cam(detector, image):
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

    with torch.no_grad():
        d = detector(image)[0]
    shifted = d["boxes"][1] + torch.tensor([3.0, -2.0, 4.0, 1.0])  # IoU still > 0.5, not 1
    cases = [(d["boxes"][0], int(d["labels"][0])), (shifted, int(d["labels"][1])),
             (d["boxes"][2], int(d["labels"][2]) + 1)]  # a class with no detection there: 0 for both
    for xyxy, label in cases:
        theirs = FasterRCNNBoxScoreTarget([label], [xyxy.numpy()])(d)
        ours = T.box(xyxy, label)([d])
        assert torch.allclose(ours, theirs.reshape(1), atol=1e-6), (ours, theirs)
    assert float(T.box(d["boxes"][0], int(d["labels"][0]))([d])) > 1.0  # IoU 1 + its score


def test_detections_explained_in_turn_and_none_is_one_line(detector, image):
    found = T.detections(detector, image, min_score=0.0)
    assert len(found) == 20 and found[0].name.startswith("class ")
    with pytest.raises(BadValue, match="lower --min-score"):
        T.detections(detector, image, min_score=0.9)
    with pytest.raises(BadValue, match="IoU > 0.5"):
        T.detections(detector, image, xyxy="0,0,3,3", cls=1)


def test_gradcam_on_the_pyramid_equals_hand_computation(detector, image, reference):
    with torch.no_grad():
        d = detector(image)[0]
    target = T.box(d["boxes"][0], int(d["labels"][0]))
    levels = {}
    handle = reference.backbone.register_forward_hook(lambda m, a, out: levels.update(out))
    score = target(reference(image)).sum()
    handle.remove()
    grads = torch.autograd.grad(score, list(levels.values()), allow_unused=True)  # (RoIs read no 'pool' level)
    hh = max(a.shape[2] for a in levels.values())
    ww = max(a.shape[3] for a in levels.values())
    cam = 0
    for a, g in zip(levels.values(), grads):  # α = the mean over the (hh, ww) map of the spread gradient
        g = torch.zeros_like(a) if g is None else g
        alpha = g.sum((2, 3), keepdim=True) / (hh * ww)
        up = torch.nn.functional.interpolate(a, size=(hh, ww), mode="nearest")
        cam = cam + (alpha * up).sum(1, keepdim=True)
    cam = cam.detach()
    att = synthviz.attribute(detector, image, "gradcam", target=target)
    assert att.info["layer"] == "backbone.pyramid"
    assert torch.allclose(att.raw, cam, rtol=1e-4, atol=1e-5 * float(cam.abs().max()))
    assert float(att.maps.max()) > 0


def test_deeplab_mask_target_equals_hand_sum():
    model = synthviz.load_model(SEG, weights="random")
    assert model.layers["gradcam"] == "backbone.16" and model.classes[15] == "person"
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x)["out"]
    cls = int(out.argmax(1).flatten().mode().values)
    region = out.argmax(1) == cls
    target = T.segment(model, x, cls)
    assert torch.allclose(target({"out": out}), (out[:, cls] * region).sum((1, 2)), rtol=1e-5)
    mask = torch.zeros(64, 64)
    mask[8:40, 16:48] = 1
    z = model.normalize(x).requires_grad_(True)  # the hand sum on torchvision's network itself
    (grad,) = torch.autograd.grad((model.net(z)["out"][:, 3] * mask).sum(), z)
    ours = synthviz.attribute(model, x, "gradient", target=T.segment(model, x, 3, mask), reduce="none").raw
    assert torch.allclose(ours, grad / model.std, rtol=1e-4, atol=1e-6 * float(grad.abs().max()))
    with pytest.raises(BadValue, match="predicted nowhere"):
        T.segment(model, x, (cls + 1) % 21)


def test_cli_box_gives_a_map_or_one_line(tmp_path, cat_png, detector, small_builds):
    result = run("saliency", cat_png, "--model", DET, "--weights", "random", "--box", "10,10,100,100", "--class", 1,
                 "--methods", "gradcam", "--size", 128, "--out", tmp_path / "none.png")
    one_line_error(result, "no detection of class 1 'person'", "IoU > 0.5")
    # a checkpoint whose class-1 bias makes every proposal a confident person: the box finds one
    bias = detector.net.roi_heads.box_predictor.cls_score.bias
    saved = bias.detach().clone()
    try:
        with torch.no_grad():
            bias[1] = 20.0
            torch.save(detector.net.state_dict(), tmp_path / "person.pt")
            from synthviz.io import as_image

            d = detector(as_image(cat_png, 128, batch=True))[0]  # the top detection, as the CLI's model finds it
    finally:
        with torch.no_grad():
            bias.copy_(saved)
    xyxy = ",".join(f"{v:.1f}" for v in d["boxes"][0].tolist())
    out = tmp_path / "det.png"
    result = run("saliency", cat_png, "--model", DET, "--weights", tmp_path / "person.pt", "--box", xyxy,
                 "--class", "person", "--methods", "gradcam", "--size", 128, "--out", out)
    assert result.exit_code == 0, result.output
    import numpy as np

    maps = np.load(tmp_path / "det-gradcam.npy")
    assert maps.shape == (1, 1, 85, 128) and maps.max() > 0 and out.exists()  # the photo's 300x451 at 128 px


def test_layers_of_a_detector_skip_its_structured_outputs(detector):
    from synthviz.layers import layer_shapes

    shapes = dict(layer_shapes(detector, 64))
    assert shapes["backbone.pyramid"] == (768, 4, 4)  # levels '0', '1', 'pool' (256 channels each) at 128 px inside
    assert "backbone" not in shapes and "transform" not in shapes  # a dict of levels, an image list: no map
