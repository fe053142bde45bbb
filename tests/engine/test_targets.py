"""Targets beyond a class index drive synthesis (and saliency, see test_transformer_saliency.py)."""

from __future__ import annotations

import pytest
import torch
from clihelp import one_line_error, run
from tiny import TinyEmbedder, TinyRegressor, TinySegmenter

import synthviz
from synthviz import targets as T
from synthviz.attribution import resolve_targets
from synthviz.errors import BadValue, SynthvizError
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
    t = resolve_targets(reg, x)  # the default, the prediction: output 0 of a single-output model
    assert t.tolist() == [0, 0] and torch.equal(t(reg(x)), reg(x)[:, 0])
    with pytest.raises(SynthvizError, match="not class scores"):
        resolve_targets(load_model(TinySegmenter()), x)
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


# --------------------------------------------------------------------------- one kind of target

METHODS = {"gradient": {}, "integrated_gradients": {"steps": 4}, "occlusion": {"window": 16, "stride": 16},
           "gradcam": {"layer": "conv3"}, "cam": {}, "scorecam": {"layer": "conv3"}, "lime": {"samples": 20}}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_spelling_of_a_class_gives_the_scores_of_its_target(tiny, method):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    opts = METHODS[method]
    spellings = [(4, T.class_index(4)), ("class 4", T.class_index(4)), ([1, 4], T.class_index([1, 4])),
                 (torch.tensor([1, 4]), T.class_index([1, 4])), ([4], T.class_index(4))]
    for value, target in spellings:
        a, b = synthviz.attribute(tiny, x, method, value, **opts), synthviz.attribute(tiny, x, method, target, **opts)
        assert torch.equal(a.raw, b.raw) and a.targets == b.targets, (method, value)
    assert a.targets == [4, 4]
    with torch.no_grad():  # and against the logits themselves: class 1 of image 0, class 4 of image 1
        logits = tiny(x)
    att = synthviz.attribute(tiny, x, method, torch.tensor([1, 4]), **opts)
    if att.scores is not None:
        assert torch.allclose(att.scores, logits[[0, 1], [1, 4]], atol=1e-5)


def test_every_spelling_of_a_class_gives_the_same_evaluation_and_objective(tiny):
    from synthviz.evaluation import deletion_curve
    from synthviz.evaluation.robustness import infidelity
    from synthviz.layers import LOGITS
    from synthviz.objectives import Context, class_score, target

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    maps = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        probs, logits = tiny(x).softmax(1), tiny(x)
    curves = [deletion_curve(tiny, x, maps, t, steps=4) for t in (3, "class 3", [3, 3], torch.tensor([3, 3]),
                                                                    T.class_index(3))]
    assert all(torch.equal(c, curves[0]) for c in curves)
    assert torch.allclose(curves[0][:, 0], probs[:, 3], atol=1e-6)  # nothing deleted yet: p(class 3 | x)
    predicted = deletion_curve(tiny, x, maps, None, steps=4)
    assert torch.allclose(predicted[:, 0], probs.max(1).values, atol=1e-6)
    assert torch.equal(predicted, deletion_curve(tiny, x, maps, logits.argmax(1), steps=4))
    assert torch.equal(infidelity(tiny, x, maps, 3, samples=2), infidelity(tiny, x, maps, T.class_index(3), samples=2))
    ctx = Context(x, {LOGITS: logits})
    assert torch.equal(target(3)(ctx), class_score(3)(ctx)) and torch.equal(target(3)(ctx), logits[:, 3])


def test_predicted_reads_the_argmax_of_the_output_it_is_given_and_changes_no_tensor():
    out = torch.randn(3, 10, generator=torch.Generator().manual_seed(4))
    kept = out.clone()
    p = T.predicted().for_batch(3)
    assert p.pending and p.is_class
    first = p[torch.tensor([2, 0])]  # a view of two of the images reads their classes first
    assert torch.equal(first(out[[2, 0]]), out[[2, 0]].amax(1))
    ids = first.class_ids()
    held = ids.clone()
    assert ids.tolist() == out[[2, 0]].argmax(1).tolist() and p.pending  # image 1 not seen yet
    later = torch.randn(3, 10)  # image 1 is read from this output; images 0 and 2 keep their class
    scores = p(later)
    expected = torch.tensor([out[0].argmax(), later[1].argmax(), out[2].argmax()])
    assert p.tolist() == expected.tolist() and not p.pending
    assert torch.equal(scores, later[torch.arange(3), expected])
    assert torch.equal(out, kept) and torch.equal(ids, held)  # nothing written in place
    fresh = p.for_batch(3)  # new images: a new reading
    assert fresh.pending and fresh(later).tolist() == later.amax(1).tolist()


def test_predicted_is_the_default_target_of_attribution(tiny):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    kept = x.clone()
    with torch.no_grad():
        argmax = tiny(x).argmax(1)
    for method, opts in (("gradient", {}), ("occlusion", {"window": 16, "stride": 16}),
                         ("integrated_gradients", {"steps": 4}), ("gradcam", {"aug_smooth": True})):
        default = synthviz.attribute(tiny, x, method, **opts)
        assert default.targets == argmax.tolist(), method
        for same in (T.predicted(), argmax):
            assert torch.equal(synthviz.attribute(tiny, x, method, same, **opts).raw, default.raw), method
    assert torch.equal(x, kept)


def test_the_readme_lambda_target_works():
    reg = load_model(TinyEmbedder())  # 16 outputs: the difference of two of them
    x = torch.rand(2, 3, 32, 32)
    t = T.Target(lambda out: out[:, 2] - out[:, 7], "2 - 7")
    with torch.no_grad():
        out = reg(x)
    assert torch.equal(t(out), out[:, 2] - out[:, 7])
    att = synthviz.attribute(reg, x, "gradient", target=t, reduce="none")
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((reg(xr)[:, 2] - reg(xr)[:, 7]).sum(), xr)
    assert torch.allclose(att.raw, g, atol=1e-6) and att.targets == ["2 - 7", "2 - 7"]
    two = T.Target(lambda out, rows: out[:, 2] * (rows + 1), "rows")  # the (output, rows) form still works
    assert torch.equal(two.for_batch(2)[torch.tensor([1, 1])](out), out[:, 2] * 2)


def test_in_mask_errors_and_resizing():
    seg = torch.randn(2, 5, 8, 8)
    mask = torch.zeros(8, 8)
    mask[2:5, 1:4] = 1
    with pytest.raises(BadValue, match="class 9 is out of range.*5 classes"):
        T.in_mask(9, mask)(seg)
    with pytest.raises(BadValue, match="empty.*nothing to explain"):
        T.in_mask(1, torch.zeros(8, 8))
    with pytest.raises(BadValue, match="empty"):
        T.in_mask(1, torch.stack([mask, torch.zeros(8, 8)]))  # one image's mask is empty
    big = mask.repeat_interleave(2, 0).repeat_interleave(2, 1)  # (16, 16): the same region at twice the size
    with pytest.warns(UserWarning, match="resized to the model's output"):
        value = T.in_mask(1, big)(seg)
    assert torch.allclose(value, seg[:, 1, 2:5, 1:4].sum((1, 2)))
    tiny_blob = torch.zeros(64, 64)
    tiny_blob[1, 1] = 1  # one pixel at 64 px: nothing left at 8 px
    with pytest.warns(UserWarning), pytest.raises(BadValue, match="no pixel left"):
        T.in_mask(1, tiny_blob)(seg)


def test_class_spellings_errors():
    with pytest.raises(BadValue, match="needs the model"):
        T.as_target("tabby")
    with pytest.raises(BadValue, match="integers"):
        T.as_target(torch.tensor([0.5]))
    with pytest.raises(BadValue, match="class 12 is out of range.*10 classes"):
        T.as_target(12)(torch.randn(2, 10))
    with pytest.raises(BadValue, match="3 targets for 2 images"):
        T.as_target([1, 2, 3]).for_batch(2)
