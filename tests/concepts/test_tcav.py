"""TCAV against known answers: a model whose class score is a known direction, null concepts drawn
from the random images' distribution (the calibrated null), scikit-learn's logistic regression,
and the command line (tcav.csv, cached CAVs reused)."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

import synthviz
from synthviz.concepts import tcav as T
from synthviz.evaluation.planted import planted_images
from synthviz.models import Model


def features() -> nn.Sequential:
    """Zero-mean 3x3 filters (blind to flat colour, so planted stripes stand out from noise), ReLU,
    2x2 average pooling: 32 features at layer "3"."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    with torch.no_grad():
        net[0].weight -= net[0].weight.mean((1, 2, 3), keepdim=True)
        net[0].bias.zero_()
    return net


def noise(n: int, seed: int) -> torch.Tensor:
    return planted_images(n, 32, patterns=("noise",), seed=seed)[0]


def stripes(n: int, seed: int) -> torch.Tensor:
    return planted_images(n, 32, patterns=("stripes",), fill=True, seed=seed)[0]


def known_direction_model() -> tuple[Model, torch.Tensor]:
    """Class 1's score is w · (layer "3"), w = mean activation of stripes − of noise, both from
    images that are in none of the sets TCAV sees; class 0's is −w."""
    net = features()
    with torch.no_grad():
        w = net(stripes(30, 1)).mean(0) - net(noise(30, 2)).mean(0)
        head = nn.Linear(32, 2)
        head.weight.copy_(torch.stack([-w, w]))
        head.bias.zero_()
    net.append(head)
    return Model(net, mean=None, std=None, classes=["other", "striped"], name="known", min_size=8), w


def test_cav_is_scikit_learns_logistic_regression():
    sk = pytest.importorskip("sklearn.linear_model")
    gen = torch.Generator().manual_seed(0)
    concept, random = torch.randn(12, 50, generator=gen) + 0.5, torch.randn(30, 50, generator=gen)
    x = T._standardized(random, concept)
    idx = torch.cat([torch.arange(6), torch.arange(12, 18)])[None]
    alpha, bias, norm = T.fit_dual(x @ x.T, idx, 6)
    ours = alpha[0] @ x[idx[0]]
    theirs = sk.LogisticRegression(C=1 / T.RIDGE, tol=1e-12, max_iter=10_000).fit(x[idx[0]].numpy(), [1] * 6 + [0] * 6)
    coef = torch.tensor(theirs.coef_[0])
    assert torch.nn.functional.cosine_similarity(ours, coef, dim=0) > 0.99999
    assert abs(float(bias[0]) - theirs.intercept_[0]) < 1e-5 and abs(float(norm[0]) - float(coef.norm())) < 1e-5


def test_null_concepts_from_the_random_distribution_are_rarely_significant():
    """20 null concepts, each drawn from the distribution of the random images, tested one at a time
    (no correction) at alpha = 0.05: the false-positive rate stays at most 10 %. Activations are
    precomputed on a small layer; the class gradient there is the known direction."""
    model, w = known_direction_model()
    net = model.net[:4]
    with torch.no_grad():
        random = net(noise(60, 3))
        nulls = [net(noise(16, 100 + q)) for q in range(20)]
    grads = w.expand(20, -1).clone()
    null = T.null_statistics(random, grads, 16, runs=20, nulls=99)
    p = []
    for q, concept in enumerate(nulls):
        cavs, _ = T.fit_cavs(concept, random, runs=20, seed=q)
        p.append(T.p_value(T.statistic(T.run_scores(grads, cavs), T.run_cosines(grads, cavs)), null))
    assert sum(v < 0.05 for v in p) <= 2, sorted(p)
    assert max(p) > 0.5  # p-values spread over [0, 1], not all small


def test_known_direction_concept_scores_high_and_significant_null_concept_does_not():
    model, _ = known_direction_model()
    result = synthviz.tcav(model, concepts={"stripes": stripes(16, 7), "noise": noise(16, 8)}, random=noise(60, 3),
                           inputs=noise(20, 9), target="striped", layers=["3"], runs=20, size=32, progress=False)
    rows = {r["concept"]: r for r in result.info["rows"]}
    assert set(rows["stripes"]) == {"layer", "concept", "score", "std", "p_value", "significant", "cav_accuracy"}
    assert rows["stripes"]["score"] >= 0.9 and rows["stripes"]["significant"] is True
    assert rows["stripes"]["p_value"] < 0.05 and rows["stripes"]["cav_accuracy"] > 0.6
    assert rows["noise"]["significant"] is False
    assert result.info["tests"] == 2 and result.images.shape == (2, 3, 96, 96)


def _write(folder, images):
    from synthviz.io import save_image

    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        save_image(img, folder / f"{i:03d}.png")
    return folder


def test_cli_writes_tcav_csv_and_a_rerun_reuses_the_cached_cavs(tmp_path, monkeypatch):
    from clihelp import one_line_error, run
    from synthviz.models import MODELS

    model, _ = known_direction_model()
    monkeypatch.setitem(MODELS._items, "known_direction", lambda weights="default": model)
    concept, random = _write(tmp_path / "stripes", stripes(8, 7)), _write(tmp_path / "random", noise(14, 3))
    inputs = _write(tmp_path / "inputs", noise(3, 9))
    args = ["tcav", "--model", "known_direction", "--concept", concept, "--random", random, "--inputs", inputs,
            "--class", "striped", "--layers", "2,3", "--runs", "5", "--nulls", "19", "--size", "32",
            "--out", tmp_path / "out"]
    first = run(*args)
    assert first.exit_code == 0, first.output
    with open(tmp_path / "out" / "tcav.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["layer"], r["concept"]) for r in rows] == [("2", "stripes"), ("3", "stripes")]
    assert list(rows[0]) == ["layer", "concept", "score", "std", "p_value", "significant", "cav_accuracy"]
    assert float(rows[1]["score"]) == 1.0  # layer 3 feeds the head: its gradient is the known direction
    cavs = sorted((tmp_path / "out" / "cavs").glob("*.pt"))
    assert len(cavs) == 2 and torch.load(cavs[1], weights_only=True)["cavs"].shape == (5, 32)
    stamps = [p.stat().st_mtime_ns for p in cavs]
    one_line_error(run(*args), "already holds", "--overwrite")
    again = run(*args, "--overwrite")
    assert again.exit_code == 0, again.output
    assert [p.stat().st_mtime_ns for p in cavs] == stamps  # reused, not refitted
    with open(tmp_path / "out" / "tcav.csv") as f:
        assert list(csv.DictReader(f)) == rows


def test_a_concept_of_one_image_is_a_one_line_error():
    model, _ = known_direction_model()
    with pytest.raises(synthviz.errors.BadValue, match="concept 'one' has 1 image.*at least 2"):
        synthviz.tcav(model, concepts={"one": noise(1, 0)}, random=noise(8, 1), inputs=noise(2, 2), target=1,
                      layers="3", size=32, progress=False)


def test_ctrl_c_keeps_the_cavs_fitted_so_far_and_exits_130(tmp_path, monkeypatch):
    from clihelp import run
    from synthviz.models import MODELS

    model, _ = known_direction_model()
    monkeypatch.setitem(MODELS._items, "known_direction", lambda weights="default": model)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "null_statistics", interrupted)  # after the first CAVs are stored
    folders = [_write(tmp_path / name, images) for name, images in
               (("stripes", stripes(4, 7)), ("random", noise(7, 3)), ("inputs", noise(2, 9)))]
    result = run("tcav", "--model", "known_direction", "--concept", folders[0], "--random", folders[1], "--inputs",
                 folders[2], "--class", "1", "--layers", "3", "--runs", "2", "--size", "32", "--out", tmp_path / "out")
    assert result.exit_code == 130 and "interrupted" in result.output
    assert len(list((tmp_path / "out" / "cavs").glob("*.pt"))) == 1 and not (tmp_path / "out" / "tcav.csv").exists()
