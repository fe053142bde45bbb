"""The fragility attack (Ghorbani et al. 2019) and the smooth activations it runs under (issue 14)."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from clihelp import one_line_error, run

import synthviz
from synthviz.evaluation import SmoothActivations, topk_intersection
from synthviz.evaluation.smooth import softplus_relu6
from synthviz.io import load_image, resize, save_image


def state(model):
    return ({k: v.clone() for k, v in model.net.state_dict().items()},
            [type(m) for m in model.net.modules()],
            sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.net.modules()))


def test_smooth_activations_replace_relu6_and_leave_the_model_alone(embedded, chelsea):
    x = resize(chelsea, (64, 64))
    z = torch.linspace(-3, 9, 50)
    assert torch.allclose(softplus_relu6(z, 30.0), z.clamp(0, 6), atol=0.03)
    with torch.no_grad():
        plain = embedded(x)
        with SmoothActivations(30.0) as mode:
            smooth = embedded(x)
        after = embedded(x)
    assert mode.calls > 10 and not torch.equal(plain, smooth) and torch.equal(plain, after)
    assert int(smooth.argmax()) == int(plain.argmax())
    # second derivatives exist under the mode (a ReLU network's are zero)
    y = torch.tensor([0.3, -0.2], requires_grad=True)
    with SmoothActivations(30.0):
        (g,) = torch.autograd.grad(F.relu6(y).sum(), y, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), y)
    assert h.abs().sum() > 0


def test_attack_keeps_the_label_after_png_and_moves_the_gradient_map(embedded, chelsea, tmp_path):
    x = resize(chelsea, (96, 96))  # at 64 px three steps move the map less than random noise does
    before = state(embedded)
    result = synthviz.attack_map(embedded, x, method="gradient", epsilon="8/255", steps=3, size=None)
    info = result.info
    path = save_image(result.images[0], tmp_path / "attacked.png")
    back = load_image(path)
    assert torch.equal(back, result.images)  # already on the 8-bit grid
    assert (back - synthviz.io.quantize(x)).abs().max() <= 8 / 255 + 1e-6
    with torch.no_grad():
        assert int(embedded(back).argmax()) == int(embedded(x).argmax()) == info["class"]
    m0 = synthviz.saliency(embedded, synthviz.io.quantize(x), method="gradient", target=info["class"])
    m1 = synthviz.saliency(embedded, back, method="gradient", target=info["class"])
    measured = float(topk_intersection(m0, m1, info["k"])[0])
    assert measured == info["attacked"]["topk_intersection"] < 0.5
    assert info["attacked"]["topk_intersection"] <= info["random"]["topk_intersection"]
    after = state(embedded)
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0]) and before[1:] == after[1:]


def test_attack_map_cli(tmp_path, chelsea):
    photo = tmp_path / "cat.png"
    save_image(resize(chelsea, (64, 64)), photo)
    out = tmp_path / "att.png"
    res = run("attack-map", photo, "--method", "gradcam", "--steps", 3, "--size", 64, "--out", out)
    assert res.exit_code == 0, res.output
    assert "top-" in res.output and "rank correlation" in res.output
    data = json.loads((tmp_path / "att.json").read_text())
    assert data["label_kept"] and set(data["attacked"]) >= {"topk_intersection", "rank_correlation"}
    assert (tmp_path / "att-maps.png").exists()
    one_line_error(run("attack-map", photo, "--out", tmp_path / "a.jpg"), ".png")
    one_line_error(run("attack-map", photo, "--method", "occlusion", "--out", tmp_path / "b.png"), "occlusion")
