"""Network Dissection on planted patterns, the labels on the unit pages and the atlas, and the
`label` and `atlas` commands (a class atlas, two classes side by side).

The known answer, at the paper's settings (top 0.5 % quantile, IoU >= 0.04, the command's
defaults): on 64 images where few hold a pattern (4 stripes, 4 red disks, 4 checkerboards filling
the frame, 52 of noise), so that stripes cover 1/16 of all pixels, the units whose top images are
stripes are labelled stripes, and every unit labelled stripes has a stripes image on top. With
every image holding a pattern (the atlas tests' index: a quarter of all pixels each) a unit's
top-0.5 % region can reach an IoU of at most 0.005 / 0.25 = 0.02 with stripes: those units get
stripes as their best class but no label; at the 2 % quantile (bound 0.08) they are labelled."""

from __future__ import annotations

import collections
import csv
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthviz.dataset import index, open_run, write_unit_pages
from synthviz.dataset.dissect import dissect, read_classes
from synthviz.evaluation.planted import write_planted
from synthviz.layers import capture
from clihelp import one_line_error
from clihelp import run as cli

LAYER = "_blocks.5"  # as the session's planted_run (tests/dataset/conftest.py)

NAMES = ["stripes", "red disk", "checkerboard", "noise"]


def top_patterns(r, unit: int, k: int | None = None) -> list[str]:
    """The patterns (folder names) of a unit's top images in the index, best first."""
    return [e.path.split("/")[-2] for e in r.top_examples(LAYER, unit, k)]


@pytest.fixture(scope="module")
def sparse_run(embedded, tmp_path_factory):
    """(index, planted folder): 4 + 4 + 4 frame-filling patterns among 52 noise images, 64 px."""
    planted = write_planted(tmp_path_factory.mktemp("sparse") / "planted", per_pattern=(4, 4, 4, 52), size=64,
                            fill=True)
    run = index(planted / "images" / "labels.csv", planted.parent / "run", model=embedded, layers=LAYER, size=64,
                top_k=8, batch_size=16, workers=0, progress=False)
    return run, planted


def test_stripes_units_are_labelled_stripes_at_the_papers_settings(sparse_run, embedded, tmp_path):
    run, planted = sparse_run
    r = open_run(run)
    units = [u for u in range(r.channels(LAYER)) if top_patterns(r, u, 2) == ["stripes", "stripes"]]
    assert len(units) >= 3
    (tmp_path / "names.txt").write_text("\n".join(NAMES) + "\n")
    result = cli("label", run, "--segmentation", planted / "masks", "--class-names", tmp_path / "names.txt")
    assert result.exit_code == 0, result.output
    with open(run / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["layer", "unit", "label", "iou"] and len(rows) == 80
    labelled = [int(row["unit"]) for row in rows if row["label"]]
    assert f"{len(labelled)} of 80 units labelled (IoU >= 0.04): {run / 'labels.csv'}" in result.output.replace("\n", "")
    assert [rows[u]["label"] for u in units] == ["stripes"] * len(units)
    stripes = [int(row["unit"]) for row in rows if row["label"] == "stripes"]
    assert all(top_patterns(r, u, 1) == ["stripes"] for u in stripes)  # no unit of another pattern called stripes
    # one unit's IoU computed here over the whole dataset at once: its top 0.5 % over all positions
    u = units[0]
    images = torch.stack([r.image(i) for i in range(len(r.paths))])
    act = capture(embedded, images, [LAYER])[LAYER][:, u]
    level = np.quantile(act.flatten().numpy(), 0.995)
    on = F.interpolate(act[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0] > float(level)
    ids = torch.stack([read_classes(planted / "masks" / "/".join(p.split("/")[-2:]), 64) for p in r.paths])
    assert float(rows[u]["iou"]) == pytest.approx(float((on & (ids == 1)).sum() / (on | (ids == 1)).sum()), abs=2e-3)
    assert float(rows[u]["iou"]) >= 0.04
    # the unit pages show the label and where it comes from
    write_unit_pages(run, tmp_path / "pages", units=[u], viz_steps=0)
    assert "label: <b>stripes</b> (Network Dissection)" in (tmp_path / "pages" / "units" / LAYER / f"{u}.html").read_text()


def test_frame_filling_patterns_cap_the_iou_and_the_atlas_shows_labels(planted_run, planted_set, embedded, tmp_path):
    import synthviz

    run, planted = planted_run, planted_set
    r = open_run(run)
    units = [u for u in range(r.channels(LAYER)) if collections.Counter(top_patterns(r, u))["stripes"] >= 6]
    assert len(units) >= 3
    paper = dissect(r, planted / "masks", NAMES, model=embedded)
    assert all(paper[u]["class"] == "stripes" and paper[u]["label"] == "" and paper[u]["iou"] <= 0.02 + 1e-6
               for u in units)
    (tmp_path / "names.txt").write_text("\n".join(NAMES) + "\n")
    args = ["label", run, "--segmentation", planted / "masks", "--class-names", tmp_path / "names.txt"]
    result = cli(*args, "--quantile", "0.02", "--overwrite")
    assert result.exit_code == 0, result.output
    with open(run / "labels.csv", newline="") as f:
        labels = {int(row["unit"]): row["label"] for row in csv.DictReader(f) if row["label"]}
    assert all(labels.get(u) == "stripes" for u in units)
    one_line_error(cli(*args), "labels.csv exists", "--overwrite")
    one_line_error(cli("label", run, "--segmentation", tmp_path, "--class-names", tmp_path / "names.txt",
                       "--overwrite"), "no mask")
    # the atlas's cells name their three strongest units with their labels (cells.csv and the page)
    try:
        synthviz.atlas(None, run=str(run), layer=LAYER, out=str(tmp_path / "atlas"), grid=3, method="pca", size=32,
                       steps=1, min_count=1)
    finally:
        (run / "labels.csv").unlink()
    means = np.load(tmp_path / "atlas" / "cells.npy")
    with open(tmp_path / "atlas" / "cells.csv", newline="") as f:
        cells = list(csv.DictReader(f))
    expected = ["; ".join(f"{k} {labels[k]}" if k in labels else str(k) for k in np.argsort(-m)[:3].tolist())
                for m in means]
    assert [c["units"] for c in cells] == expected and any("stripes" in text for text in expected)
    page = (tmp_path / "atlas" / "index.html").read_text()
    assert all(f"units: {text}" in page for text in expected)


def test_class_atlas_command(planted_run, tmp_path):
    from synthviz.cli.atlas import atlas_cmd
    from synthviz.dataset.atlas import MIN_COUNT
    from synthviz.techniques.atlas import atlas

    run, out = planted_run, tmp_path / "atlas"
    for f in (atlas_cmd, atlas):  # one default for --min-count
        assert inspect.signature(f).parameters["min_count"].default == MIN_COUNT
    result = cli("atlas", run, "--layer", LAYER, "--grid", 3, "--out", out, "--method", "pca", "--size", 32,
                 "--steps", 1, "--class", "window screen", "--versus", "radiator")
    if result.exit_code == 2:  # the classes the embedded model predicts for these patterns changed
        pytest.skip(result.output)
    assert result.exit_code == 0, result.output
    assert (out / "atlas.png").exists() and (out / "window_screen" / "cells.csv").exists()
    assert (out / "radiator" / "cells.csv").exists() and "window screen" in (out / "index.html").read_text()
    with open(out / "window_screen" / "cells.csv", newline="") as f:
        cells = list(csv.DictReader(f))
    assert {c["top_class"] for c in cells} == {"window screen"}  # a class atlas holds only its class
    one_line_error(cli("atlas", run, "--out", out, "--grid", 3), "already holds an atlas", "--overwrite")
    one_line_error(cli("atlas", run, "--out", tmp_path / "a2", "--class", "no such class"), "no such class")
    one_line_error(cli("atlas", run, "--out", tmp_path / "a3", "--versus", "radiator"), "--versus", "--class")
