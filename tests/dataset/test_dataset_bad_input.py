"""The dataset commands given bad or careless input (issue 26): every case a one-line error that
names the fix (checked before any work), or the right result. A damaged run is found on resume, a
folder of unusable files is an error that lists them, images below the model's minimum are skipped
and listed, Ctrl-C says what was kept, a run works from any folder."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tomllib
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from clihelp import ROOT, cli_with, one_line_error, run
from synthviz.dataset import Run, index
from synthviz.io import size_problem
from test_dataset import make_dataset

SIZE, LAYER = 64, "_blocks.1"
ARGS = ("--layers", LAYER, "--size", SIZE, "--top-k", 3, "--batch-size", 4, "--workers", 0)


def write_png(path: Path, h: int, w: int) -> Path:
    import imageio.v3 as iio

    iio.imwrite(path, np.random.default_rng(h * w).integers(0, 255, (h, w, 3), dtype=np.uint8))
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("bad") / "photos")


@pytest.fixture(scope="module")
def few(photos, tmp_path_factory) -> Path:
    """7 of the files (one not an image) in the same layout: passes of 2 batches, quick to repeat."""
    root = tmp_path_factory.mktemp("few") / "photos"
    shutil.copytree(photos / "cat", root / "cat")
    (root / "things").mkdir()
    for name in ("broken.png", "coffee-full.png", "rocket-crop.png"):
        shutil.copy(photos / "things" / name, root / "things" / name)
    return root


@pytest.fixture(scope="module")
def done(few, embedded, tmp_path_factory) -> Path:
    """A finished index of ``few`` (the reference an --overwrite restart must equal)."""
    return index(few, tmp_path_factory.mktemp("done") / "run", model=embedded, layers=LAYER, size=SIZE, top_k=3,
                 batch_size=4, workers=0, progress=False)


def test_bad_index_options_fail_before_the_model_loads(photos, tmp_path):
    # an unknown model would be the error if anything below were checked after loading it
    nowhere = ("--model", "no-such-model")
    one_line_error(run("index", photos, "--out", tmp_path / "r", *ARGS[:-2], "--workers", -1, *nowhere),
                   "workers must be 0 or more, not -1")
    user_file = tmp_path / "notes.txt"
    user_file.write_text("mine")
    one_line_error(run("index", photos, "--out", user_file, *ARGS, *nowhere), f"--out {user_file} is a file",
                   "choose another --out")
    one_line_error(run("index", photos, "--out", user_file, *ARGS, "--overwrite", *nowhere), "is a file")
    assert user_file.read_text() == "mine"
    for name, text in (("empty.csv", ""), ("header.csv", "path,label\n"), ("blank.txt", "\n# none\n")):
        (tmp_path / name).write_text(text)
        one_line_error(run("index", tmp_path / name, "--out", tmp_path / "r", *ARGS, *nowhere),
                       f"{tmp_path / name} lists no images", "one image path per line")
    assert not (tmp_path / "r").exists()


def interrupted(photos, embedded, out: Path, after: int = 1) -> Path:
    """A pass stopped (Ctrl-C) after ``after`` batches, checkpointed: an unfinished run folder."""
    def stop(done):
        if done == after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index(photos, out, model=embedded, layers=LAYER, size=SIZE, top_k=3, batch_size=4, workers=0,
              progress=False, checkpoint_every=0, on_batch=stop)
    assert json.loads((out / "manifest.json").read_text())["status"] == "partial"
    return out


@pytest.mark.parametrize("part", ["manifest.json", "state.npz", f"features/{LAYER}.npy"])
def test_a_resume_over_a_damaged_run_says_so_and_overwrite_starts_again(few, embedded, done, tmp_path, part):
    out = interrupted(few, embedded, tmp_path / "run")
    data = (out / part).read_bytes()
    (out / part).write_bytes(data[: len(data) * 2 // 3])  # cut short, as by a full disk or a copy stopped midway
    one_line_error(run("index", few, "--out", out, *ARGS), f"the index in {out} is damaged ({part}",
                   "--overwrite")
    result = run("index", few, "--out", out, *ARGS, "--overwrite")
    assert result.exit_code == 0, result.output
    for name in ("topk.csv", "bottomk.csv", "units.csv", "skipped.txt", "state.npz", f"features/{LAYER}.npy"):
        assert (out / name).read_bytes() == (done / name).read_bytes(), name


def test_a_damaged_finished_run_is_one_line_for_the_commands_that_read_it(done, tmp_path):
    copy = shutil.copytree(done, tmp_path / "copy")
    (copy / "manifest.json").write_text((done / "manifest.json").read_text()[:40])
    one_line_error(run("neighbours", copy, 0, "--out", tmp_path / "n.png"), "damaged (manifest.json",
                   "synthviz index ... --overwrite")
    shutil.copy(done / "manifest.json", copy / "manifest.json")
    (copy / "state.npz").write_bytes((done / "state.npz").read_bytes()[:100])
    one_line_error(run("facets", copy, 0, "--facets", 2, "--out", tmp_path / "f.png"), "damaged (state.npz")


def test_a_folder_of_unusable_files_is_an_error_listing_them(photos, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"not a png")
    (bad / "b.png").write_bytes(b"")
    write_png(bad / "c.png", 1, 1)
    out = tmp_path / "run"
    result = run("index", bad, "--out", out, *ARGS)
    bar = "index " + "\u2501"  # the pass's progress bar, drawn before the files turn out unusable
    result = SimpleNamespace(exit_code=result.exit_code,
                             output="\n".join(x for x in result.output.splitlines() if not x.startswith(bar)))
    line = one_line_error(result, "nothing to index", "a.png (not an image or corrupt)",
                          "b.png (not an image or corrupt)", "c.png (1x1 px, smaller than the 32 px",
                          f"{out / 'skipped.txt'}")
    assert "indexed" not in line
    listed = [row.split("\t")[0] for row in (out / "skipped.txt").read_text().splitlines()]
    assert listed == [str(bad / n) for n in ("a.png", "b.png", "c.png")]
    # the files mended, the same command reads them again (nothing of the failed pass is kept)
    for name, good in zip(("a.png", "b.png", "c.png"), sorted((photos / "things").glob("*-full.png"))):
        (bad / name).unlink()
        shutil.copy(good, bad / name)
    result = run("index", bad, "--out", out, *ARGS)
    assert result.exit_code == 0 and "indexed 3 images" in result.output, result.output


def test_images_below_the_models_minimum_are_skipped_and_listed(photos, embedded, tmp_path):
    folder = tmp_path / "odd"
    shutil.copytree(photos / "cat", folder)
    tiny, strip = write_png(folder / "tiny.png", 1, 1), write_png(folder / "strip.png", 10, 20000)
    out = tmp_path / "run"
    result = run("index", folder, "--out", out, *ARGS)
    assert result.exit_code == 0 and "indexed 4 images" in result.output and "2 skipped" in result.output
    r = Run(out)
    # the reasons are the one size rule's, at the square size the pass reads images at
    expected = {str(strip): size_problem(10, 20000, (SIZE, SIZE), embedded.min_size)[0],
                str(tiny): size_problem(1, 1, (SIZE, SIZE), embedded.min_size)[0]}
    assert dict(r.skipped) == expected and all(expected.values())
    for path in expected:
        assert np.isnan(r.features(LAYER)[r.paths.index(path)]).all()
        assert path not in (out / "topk.csv").read_text()
    # the same rule for a query image, and for images embedded on the fly (skipped with a warning)
    one_line_error(run("neighbours", out, tiny, "--out", tmp_path / "n.png"), "tiny.png) was skipped by the index (1x1 px")
    outside = write_png(tmp_path / "icon.png", 2, 2)
    one_line_error(run("neighbours", out, outside, "--out", tmp_path / "n.png"), f"{outside}: 2x2 px",
                   "use an image at least 32x32 px")
    import synthviz

    with pytest.warns(UserWarning, match=r"skipped 1 unreadable file\(s\): tiny.png \(1x1 px"):
        result = synthviz.embedding(embedded, images=[*sorted(folder.glob("chelsea-*.png")), tiny], layer=LAYER,
                                    method="pca", size=SIZE, thumb=8)
    assert len(result.info["paths"]) == 4 and str(tiny) not in result.info["paths"]


def test_ctrl_c_while_the_model_loads_keeps_nothing_and_says_so(few, tmp_path):
    patch = """
        import importlib
        ix = importlib.import_module("synthviz.dataset.index")  # the module (the package exports a function of that name)
        def load_model(*a, **k):  # Ctrl-C while the model is still loading
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        ix.load_model = load_model
    """
    out = tmp_path / "run"
    proc = cli_with(patch, "index", few, "--out", out, *ARGS, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 130 and "Traceback" not in output, output
    assert f"interrupted before indexing started: nothing was written to {out}" in output
    assert "progress is kept" not in output and not out.exists()


def test_ctrl_c_during_the_pass_keeps_the_progress_where_it_says(few, done, tmp_path):
    patch = """
        import importlib
        ix = importlib.import_module("synthviz.dataset.index")  # the module (the package exports a function of that name)
        real, calls = ix.forward_batch, [0]
        def forward_batch(*a, **k):
            calls[0] += 1
            if calls[0] == 2:  # one batch of two is done
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(30)
            return real(*a, **k)
        ix.forward_batch = forward_batch
    """
    out = tmp_path / "run"
    proc = cli_with(patch, "index", few, "--out", out, *ARGS, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 130 and "Traceback" not in output, output
    assert f"interrupted: progress is kept in {out}; run the same command to resume" in output
    assert json.loads((out / "manifest.json").read_text())["status"] == "partial" and (out / "state.npz").exists()
    result = run("index", few, "--out", out, *ARGS)
    assert result.exit_code == 0, result.output
    assert (out / "topk.csv").read_bytes() == (done / "topk.csv").read_bytes()


def test_neighbours_bad_queries_and_k(done, tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("not an image")
    one_line_error(run("neighbours", done, fake, "--out", tmp_path / "n.png"), f"cannot read {fake} as an image")
    one_line_error(run("neighbours", done, 0, "-k", 0, "--out", tmp_path / "n.png"), "k must be positive, not 0")
    assert not (tmp_path / "n.png").exists()


def test_a_run_made_with_relative_paths_works_from_another_folder(few, embedded, tmp_path, monkeypatch):
    from synthviz.dataset.neighbours import nearest

    work = tmp_path / "work"
    shutil.copytree(few, work / "photos")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(work)
    index("photos", "run", model=embedded, layers=LAYER, size=SIZE, top_k=3, batch_size=4, workers=0, progress=False)
    monkeypatch.chdir(tmp_path / "elsewhere")
    r = Run(work / "run")
    assert all(os.path.isabs(p) and os.path.exists(p) for p in r.paths)
    assert nearest(r, 2, LAYER, k=1)[0][0] == 2 and r.image(2).shape == (3, SIZE, SIZE)
    # a run written before paths were stored absolute: relative to the folder its command ran in
    images = work / "run" / "images.csv"
    rows = list(csv.reader(images.open()))
    images.write_text("".join(",".join([rows[0][0], os.path.relpath(row[1], work), *row[2:]] if i else row) + "\n"
                              for i, row in enumerate(rows)))
    assert "photos/" in images.read_text() and str(work) not in images.read_text()
    old = Run(work / "run")
    assert old.paths == r.paths and nearest(old, 2, LAYER, k=1)[0][0] == 2
    result = run("neighbours", work / "run", 5, "-k", 2, "--layer", LAYER, "--out", tmp_path / "n.png")
    assert result.exit_code == 0 and result.output.split()[1] == r.paths[5], result.output
    # the same command, run again where it ran first, finds the old run finished (not "other images")
    monkeypatch.chdir(work)
    assert index("photos", "run", model=embedded, layers=LAYER, size=SIZE, top_k=3, batch_size=4, workers=0,
                 progress=False) == Path("run")


def test_zero_facets_thumbs_and_images_fail_before_any_work(done, tmp_path, monkeypatch):
    import synthviz.dataset.embedding as embedding
    import synthviz.dataset.facets as facets

    def no_work(*a, **k):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(facets, "load_model", no_work)
    monkeypatch.setitem(embedding.EMBEDDINGS._items, "pca", no_work)
    one_line_error(run("facets", done, 0, "--facets", 0, "--out", tmp_path / "f.png"), "facets must be positive, not 0")
    one_line_error(run("embed", done, "--method", "pca", "--thumb", 0, "--out", tmp_path / "e.png"),
                   "thumb must be positive, not 0")
    one_line_error(run("embed", done, "--method", "pca", "--max-images", 0, "--out", tmp_path / "e.png"),
                   "max_images must be positive, not 0")
    assert not list(tmp_path.iterdir())


def test_umap_without_umap_learn_names_the_embed_extra(done, tmp_path, monkeypatch):
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("umap-learn") for dep in extras["embed"])
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` now fails as if it were not installed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        line = one_line_error(run("embed", done, "--method", "umap", "--out", tmp_path / "e.png"),
                              "UMAP needs umap-learn", 'pip install "synthviz[embed]"')
    assert "--method tsne" in line and not (tmp_path / "e.png").exists()


def test_images_as_a_folder_or_a_glob_index_as_the_list_of_their_files(few, embedded):
    """``images=`` takes what `synthviz index` takes, not only a list: the folder (and a glob) give
    the same picture as the list of the files in them (a string was once read letter by letter)."""
    import synthviz

    files = sorted(str(p) for p in (few / "cat").glob("*.png"))
    kwargs = dict(layer=LAYER, method="pca", size=SIZE, thumb=8)
    listed = synthviz.embedding(embedded, images=files, **kwargs)
    for given in (few / "cat", str(few / "cat"), str(few / "cat" / "*.png")):
        result = synthviz.embedding(embedded, images=given, **kwargs)
        assert result.info["paths"] == listed.info["paths"] and sorted(result.info["paths"]) == files
        assert result.info["cells"] == listed.info["cells"] and torch.equal(result.figure, listed.figure)
