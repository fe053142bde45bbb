"""Which map to trust, with its uncertainty (issue 31): bootstrap intervals over the images, ranks
per metric and family, ranks.csv and summary.md."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from synthviz.evaluation import evaluate_methods, score, write_report
from synthviz.evaluation.ranking import RANK_COLUMNS, bootstrap, rank, summary_md
from synthviz.evaluation.run import Evaluation
from synthviz.evaluation.synthetic import make_dataset, train


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/evaluation/conftest.py


@pytest.fixture(scope="module")
def planted():
    """A tiny CNN trained on images whose class is decided by one planted striped patch, and 16
    held-out images with their evidence masks."""
    x, y, _ = make_dataset(384, seed=0)
    model = train(x, y, epochs=3)
    tx, ty, tm = make_dataset(16, seed=100)
    return model, tx, ty, tm


def test_bootstrap_interval_matches_the_normal_approximation():
    """n normal values: the 95 % percentile interval of the mean is mean ± 1.96·sd/√n (to ~10 %)."""
    v = np.random.default_rng(3).normal(2.0, 1.0, 400)
    means, low, high, diff = bootstrap(np.stack([v, v + 0.5]), reps=2000)
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v))
    assert means[0] == pytest.approx(v.mean())
    assert (high[0] - low[0]) / 2 == pytest.approx(half, rel=0.1)
    # a constant paired difference: its interval is that constant exactly
    assert diff[1, 0].tolist() == pytest.approx([0.5, 0.5, 0.5])
    # one image: no interval
    _, low1, high1, _ = bootstrap(v[None, :1])
    assert np.isnan(low1[0]) and np.isnan(high1[0])


def test_intervals_shrink_as_images_are_added(planted, tmp_path):
    model, tx, _, _ = planted
    widths = {}
    for n in (4, 16):
        ev = evaluate_methods(model, {f"i{i}.png": tx[i:i + 1] for i in range(n)}, "gradient,gradcam", checks=(),
                              curve_steps=4, samples=2)
        ranking = rank(ev)
        rows = [r for r in ranking.rows if r["metric"] in ("deletion_auc", "insertion_auc", "gini")]
        assert all(r["low"] <= r["mean"] <= r["high"] for r in rows)
        widths[n] = np.mean([r["high"] - r["low"] for r in rows])
    assert widths[16] < 0.75 * widths[4]
    paths = write_report(ev, tmp_path / "report")
    assert [p.name for p in paths] == ["metrics.csv", "ranks.csv", "summary.md", "index.html"]
    with open(tmp_path / "report" / "ranks.csv") as f:
        table = list(csv.reader(f))
    assert table[0] == RANK_COLUMNS == ["family", "metric", "method", "mean", "low", "high", "rank"]
    assert {r[2] for r in table[1:]} == set(ev.methods)
    assert {r[0] for r in table[1:]} == {"faithfulness", "complexity"}
    page = (tmp_path / "report" / "index.html").read_text()
    assert "95% interval" in page and "Random references" in page


def planted_evaluation(model, tx, ty, tm) -> Evaluation:
    """An Evaluation of three "methods" on the planted images, scored by the registered metrics: the
    evidence mask itself (times a little noise, so the order inside the patch is not flat), an exact
    copy of it, and a random map."""
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(tm.shape, generator=gen)
    maps = {"evidence": tm * (1 + 0.01 * noise), "copy": tm * (1 + 0.01 * noise), "random": torch.rand(tm.shape, generator=gen)}
    metrics = ["relevance_mass_accuracy", "deletion"]
    names = [f"p{i}" for i in range(len(tx))]
    ev = Evaluation(rows=[], methods=list(maps), model="planted", images={n: tx[i:i + 1] for i, n in enumerate(names)},
                    metrics=metrics, matched={"evidence": "random", "copy": "random"})
    values = {(m, k): score(model, tx, a, ty, metric=k, masks=tm > 0.5, **({"canvas": "blurred", "steps": 8}
                                                                         if k == "deletion" else {}))
              for m, a in maps.items() for k in metrics}
    for m in maps:
        for i, name in enumerate(names):
            ev.rows.append({"method": m, "image": name, "notes": None,
                            **{k: float(values[(m, k)][i]) for k in metrics}})
    return ev


def test_a_map_equal_to_the_planted_evidence_ranks_above_a_random_map(planted):
    ev = planted_evaluation(*planted)
    ranking = rank(ev)
    got = {(r["metric"], r["method"]): r for r in ranking.rows}
    for metric, family in (("relevance_mass_accuracy", "localisation"), ("deletion", "faithfulness")):
        assert got[(metric, "evidence")]["rank"] == got[(metric, "copy")]["rank"] == 1
        assert got[(metric, "random")]["rank"] == 3  # both evidence maps are distinguishably better
        assert got[(metric, "evidence")]["family"] == family
        assert ("copy", "evidence") in ranking.indistinguishable(metric)
        assert not [p for p in ranking.indistinguishable(metric) if "random" in p]
    assert got[("relevance_mass_accuracy", "evidence")]["mean"] == pytest.approx(1.0)
    text = summary_md(ev, ranking)
    assert "## localisation" in text and "## faithfulness" in text
    assert text.count("Best: **evidence**") == 2
    assert "better than random by" in text and "not distinguishable from evidence | copy |" not in text
