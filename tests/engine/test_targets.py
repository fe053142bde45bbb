"""Targets beyond a class index drive synthesis (and saliency, see test_transformer_saliency.py)."""

from __future__ import annotations

import pytest
import torch
from clihelp import one_line_error, run
from tiny import TinyEmbedder, TinyRegressor, TinySegmenter

import synthviz
from synthviz import targets as T
from synthviz.errors import SynthvizError
from synthviz.models import load_model


def test_target_values_against_hand_computation():
    out = torch.randn(3, 10)
    assert torch.equal(T.class_index(4).for_batch(3)(out), out[:, 4])
    assert torch.equal(T.class_index([1, 2, 3]).for_batch(3)(out), out[torch.arange(3), torch.tensor([1, 2, 3])])
    assert torch.allclose(T.classes([1, 5, 9])(out), out[:, 1] + out[:, 5] + out[:, 9])
    assert torch.equal(T.output_index(7)(out), out[:, 7])
    ref = torch.randn(1, 10)
    manual = (out @ ref[0]) / (out.norm(dim=1) * ref.norm())
    assert torch.allclose(T.cosine(ref)(out), manual, atol=1e-6)
    seg = torch.randn(2, 3, 8, 8)
    mask = torch.zeros(8, 8)
    mask[2:5, 1:4] = 1
    assert torch.allclose(T.in_mask(2, mask)(seg), seg[:, 2, 2:5, 1:4].sum((1, 2)))
    assert torch.allclose(T.Target(lambda o: o[:, 0] - o[:, 1], per_image=False)(out), out[:, 0] - out[:, 1])


def test_targets_follow_their_images_through_expanded_batches():
    t = T.class_index([4, 7]).for_batch(2)
    out = torch.randn(6, 10)
    rep = t.repeat(3)  # rows 0, 1, 0, 1, 0, 1
    assert torch.equal(rep(out), out[torch.arange(6), torch.tensor([4, 7, 4, 7, 4, 7])])
    assert rep.tolist() == [4, 7, 4, 7, 4, 7] and t[torch.tensor([1])].tolist() == [7]
    sim = T.cosine(torch.eye(2, 10)).for_batch(2)
    x = torch.randn(2, 10)
    assert torch.allclose(sim[torch.tensor([1, 0])](x), torch.stack([x[0, 1], x[1, 0]]) / x.norm(dim=1), atol=1e-6)


def test_resolve_defaults_and_errors():
    reg = load_model(TinyRegressor())
    x = torch.rand(2, 3, 16, 16)
    t = T.resolve(reg, x)
    assert t.name == "output[0]" and torch.equal(t(reg(x)), reg(x)[:, 0])
    with pytest.raises(SynthvizError, match="not class scores"):
        T.resolve(load_model(TinySegmenter()), x)
    with pytest.raises(SynthvizError, match="one of"):
        T.from_options(reg, classes_="1,2", output=0)
    with pytest.raises(SynthvizError, match="--mask needs --class"):
        T.from_options(reg, mask="m.png")


def test_classviz_of_a_regression_output_rises():
    m = load_model(TinyRegressor())
    result = synthviz.classviz(m, T.output_index(0), size=32, steps=30, recipe="classic", lr=0.1)
    # (the recipe's grey padding and σ 1 blur hold a random 32-px model back: a small, sure rise)
    assert result.info["value"][0] > result.info["start"][0] + 0.015
    assert result.history[-5:].mean() > result.history[:5].mean()


def test_classviz_of_an_embedding_similarity_rises():
    e = load_model(TinyEmbedder())
    ref = torch.zeros(1, 3, 32, 32)
    ref[:, 0, :16] = 1
    ref[:, 2, 16:, :16] = 1
    target = T.similar_to(e, ref)
    result = synthviz.classviz(e, target, size=32, steps=30, lr=0.1)
    start, end = result.info["start"][0], result.info["value"][0]
    assert end > start + 0.3 and end > 0.5, (start, end)


def test_classviz_cli_with_several_classes_and_a_similarity(tmp_path, chelsea128):
    from synthviz.io import save_image

    photo = save_image(chelsea128[0], tmp_path / "cat.png")
    out = tmp_path / "multi.png"
    res = run("classviz", "--classes", "281,285", "--size", "32", "--steps", "3", "--device", "cpu", "--out", out)
    assert res.exit_code == 0, res.output
    assert "sum of classes 281,285" in res.output and out.exists()
    res = run("classviz", "--similar-to", photo, "--size", "32", "--steps", "3", "--device", "cpu",
              "--out", tmp_path / "sim.png")
    assert res.exit_code == 0 and "similarity to cat.png" in res.output, res.output
    one_line_error(run("classviz", "285", "--class", "3", "--out", tmp_path / "x.png"), "give the class once")


def test_saliency_cli_with_several_classes_and_folder_refusal(tmp_path, chelsea128):
    from synthviz.io import save_image

    photo = save_image(chelsea128[0], tmp_path / "cat.png")
    res = run("saliency", photo, "--classes", "281,285", "--methods", "gradient", "--size", "64", "--device", "cpu",
              "--out", tmp_path / "s.png")
    assert res.exit_code == 0 and "sum of classes 281,285" in res.output, res.output
    import numpy as np

    assert np.load(tmp_path / "s-gradient.npy").shape == (1, 1, 64, 64)
    one_line_error(run("saliency", tmp_path, "--output-index", "0", "--out", tmp_path / "f.png"), "one photo")


def test_classviz_of_a_list_renders_one_image_per_class_in_one_batch(tiny):
    result = synthviz.classviz(tiny, [1, "class 4"], size=32, steps=12, lr=0.1, crops=1)
    assert result.images.shape == (2, 3, 32, 32)
    assert result.info["cls"] == [1, 4] and result.info["label"] == ["class 1", "class 4"]
    assert result.labels == ["class 1 class 1", "class 4 class 4"]
    with torch.no_grad():
        logits = tiny(result.images)
    # each image raised its own class: image 0 scores class 1 above image 1, and image 1 class 4 above image 0
    assert logits[0, 1] > logits[1, 1] and logits[1, 4] > logits[0, 4], logits[:, [1, 4]]
    probs = logits.softmax(-1)
    assert result.info["probability"] == pytest.approx([float(probs[0, 1]), float(probs[1, 4])], rel=1e-4)
    with pytest.raises(SynthvizError, match="drop batch"):
        synthviz.classviz(tiny, [1, 4], size=32, steps=2, batch=2)
    with pytest.raises(SynthvizError, match="at least one class"):
        synthviz.classviz(tiny, [], size=32, steps=2)


def test_classviz_cli_each_class(tmp_path):
    out = tmp_path / "each.png"
    res = run("classviz", "--each", "goldfish, 285", "--size", "32", "--steps", "2", "--crops", "1",
              "--device", "cpu", "--out", out)
    assert res.exit_code == 0, res.output
    assert "class 1 'goldfish'" in res.output and "class 285 'Egyptian cat'" in res.output
    assert out.exists()
    one_line_error(run("classviz", "285", "--each", "1,2", "--out", tmp_path / "x.png"), "drop TARGET")
