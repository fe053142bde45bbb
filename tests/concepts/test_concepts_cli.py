"""`synthviz concepts`, `concepts-render` and `concept-map` end to end on a dozen tiny planted images
(64 px), a corrupt file among them; an interrupted run resumes to the same files; bad input is one line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from synthviz.concepts import learn, render_concepts, write_pages
from synthviz.evaluation.planted import planted_images
from synthviz.io import save_image
from synthviz.models import load_model
from tests.clihelp import one_line_error, run

# gradient × coefficient: an NMF run's default, Sobol indices, costs 192 passes per image (one per predicted
# class here: 10 of the 12 images); tests/concepts/test_class_sobol.py tests the default on a tiny model
ARGS = ["--layer", "_blocks.5", "--concepts", "4", "--size", "64", "--workers", "0", "--batch-size", "4",
        "--importance", "gradient"]


@pytest.fixture(scope="module", autouse=True)
def unfused(embedded):
    """Models loaded by these commands run unfused: no fused twin to build for a dozen 64-px images.
    (The session's ``embedded`` is made first, outside the patch: later modules get it fused.)"""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNTHVIZ_FUSE", "0")
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    images, _, _ = planted_images(3, 64)
    paths = [save_image(image, folder / f"{i:02d}.png") for i, image in enumerate(images)]
    (folder / "broken.png").write_bytes(b"not a png")
    listing = folder / "images.txt"
    listing.write_text("".join(f"{p.name}\n" for p in [*paths[:5], folder / "broken.png", *paths[5:]]))
    return listing


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    result = run("concepts", data, *ARGS, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_a_run_writes_every_output(finished):
    rows = list(csv.DictReader(open(finished / "concepts.csv")))
    assert set(rows[0]) == {"concept", "rank", "path", "value"}
    assert {int(r["concept"]) for r in rows} == {0, 1, 2, 3} and all(not r["path"].endswith("broken.png") for r in rows)
    for k in range(4):  # ranked by value, largest first
        values = [float(r["value"]) for r in rows if int(r["concept"]) == k]
        assert values == sorted(values, reverse=True) and len(values) == 12
    assert "broken.png" in (finished / "skipped.txt").read_text()
    metrics = json.loads((finished / "metrics.json").read_text())
    assert 0 < metrics["r2"] <= 1 and 0 <= metrics["dead_fraction"] <= 1 and metrics["l0"] > 0
    d = torch.load(finished / "dictionary.pt", weights_only=True)
    assert d["method"] == "nmf" and d["layer"] == "_blocks.5" and d["model"] == "efficientnet_lite0"
    assert d["dictionary"].shape == (4, 80)
    imp = list(csv.DictReader(open(finished / "importance.csv")))
    assert set(imp[0]) == {"class", "concept", "importance"} and len(imp) % 4 == 0
    page = (finished / "index.html").read_text()
    assert all(f"pages/concept-{k:03d}.html" in page for k in range(4))
    assert (finished / "pages" / "concept-000-top.png").exists()
    assert not (finished / "collect-activations.npy").exists()  # intermediate arrays removed


def test_a_finished_run_is_not_overwritten_silently(data, finished):
    one_line_error(run("concepts", data, *ARGS, "--out", finished), "--overwrite")


def test_concept_map_and_render(finished, embedded, tmp_path):
    photo = tmp_path / "photo.png"
    save_image(planted_images(1, 64, patterns=("red disk",))[0][0][:, :48, :], photo)  # 48 x 64, not square
    out = tmp_path / "map.png"
    result = run("concept-map", photo, "--run", finished, "--out", out)
    assert result.exit_code == 0, result.output
    maps = np.load(tmp_path / "map-concepts.npy")
    assert maps.shape == (4, 48, 64) and (maps >= 0).all() and maps.max() > 0
    assert "importance: sobol" in result.output  # an NMF run: CRAFT's Sobol indices by default
    again = run("concept-map", photo, "--run", finished, "--out", tmp_path / "g.png", "--importance", "gradient")
    assert again.exit_code == 0 and "importance: gradient" in again.output, again.output
    assert np.array_equal(np.load(tmp_path / "g-concepts.npy"), maps)
    one_line_error(run("concept-map", photo, "--run", finished, "--out", tmp_path / "x.png", "--importance", "shap"),
                   "gradient")
    rendered = render_concepts(finished, "0-1", model=embedded, steps=1, size=64)  # the command's library calls
    write_pages(finished, model=embedded)
    assert rendered.images.shape == (2, 3, 64, 64)
    assert (finished / "renders" / "concept-001.png").exists() and not (finished / "renders" / "concept-002.png").exists()
    assert "renders/concept-000.png" in (finished / "index.html").read_text()
    one_line_error(run("concepts-render", finished, "--concepts", "7"), "0-3")


def test_an_interrupted_run_resumes_to_the_same_results(data, finished, tmp_path):
    out = tmp_path / "b"

    def stop(batches):
        if batches == 2:
            raise KeyboardInterrupt

    model = load_model("efficientnet_lite0")  # unfused, as the command's (the module's SYNTHVIZ_FUSE=0)
    kwargs = dict(model=model, layer="_blocks.5", concepts=4, size=64, workers=0, batch_size=4, progress=False,
                  pages=False, importance="gradient")
    with pytest.raises(KeyboardInterrupt):
        learn(data, out, on_batch=stop, **kwargs)
    assert json.loads((out / "collect.state.json").read_text())["batches_done"] == 2
    learn(data, out, **kwargs)
    assert (out / "concepts.csv").read_text() == (finished / "concepts.csv").read_text()
    assert json.loads((out / "metrics.json").read_text())["importance"] == "gradient x coefficient"
    assert torch.equal(torch.load(out / "dictionary.pt", weights_only=True)["dictionary"],
                       torch.load(finished / "dictionary.pt", weights_only=True)["dictionary"])


@pytest.mark.parametrize("damage, what", [("cut", "collect-activations.npy cannot be read"),
                                          ("missing", "collect-activations.npy is missing"),
                                          ("state", "collect.state.json cannot be read"),
                                          ("manifest", "manifest.json cannot be read"),
                                          ("images", "images.csv is missing")])
def test_a_damaged_interrupted_run_is_one_line_not_a_silent_restart(data, tmp_path, damage, what):
    """A resume maps the pass's arrays for writing: a file cut short would be zero-filled silently (the
    batches done would then read as zeros). Each damage is one line offering --overwrite, which works."""
    out = tmp_path / "b"

    def stop(batches):
        if batches == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        learn(data, out, model=load_model("efficientnet_lite0"), layer="_blocks.5", concepts=4, size=64, workers=0,
              batch_size=4, progress=False, pages=False, importance="gradient", on_batch=stop)
    array = out / "collect-activations.npy"
    if damage == "cut":
        array.write_bytes(array.read_bytes()[: array.stat().st_size // 2])
    elif damage == "missing":
        array.unlink()
    elif damage == "images":
        (out / "images.csv").unlink()
    else:
        (out / f"{'collect.state' if damage == 'state' else damage}.json").write_text('{"batches_done": ')
    one_line_error(run("concepts", data, *ARGS, "--out", out), f"the concepts run in {out} is damaged ({what}",
                   "--overwrite")
    assert run("concepts", data, *ARGS, "--out", out, "--overwrite").exit_code == 0


def test_bad_input_is_one_line(data, tmp_path):
    one_line_error(run("concepts", data, "--method", "pca", "--out", tmp_path / "x"), "pca", "nmf")
    one_line_error(run("concepts", data, "--concepts", "4", "--k", "9", "--out", tmp_path / "x"), "--k")
    one_line_error(run("concepts", data, "--ray", " ", "--out", tmp_path / "x"), "--ray needs auto")
    one_line_error(run("concepts", data, "--sobol-images", "-1", "--out", tmp_path / "x"), "sobol_images")
    one_line_error(run("concepts", data, "--importance", "shap", "--out", tmp_path / "x"), "sobol")
    (tmp_path / "empty").mkdir()
    one_line_error(run("concepts", tmp_path / "empty", "--out", tmp_path / "x"), "no images")
    one_line_error(run("concept-map", data, "--run", tmp_path / "empty", "--out", tmp_path / "m.png"), "concepts run")
