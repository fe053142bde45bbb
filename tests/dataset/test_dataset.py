"""Dataset probing on a generated dataset (scikit-image photos: crops, flips, colour variations, at
64 px, shallow layers of the embedded model): top-k equal to brute force over the whole activation
tensor, the top patch where the maximum is, measured receptive fields, resume with identical
files, unreadable files listed and skipped, nearest neighbours, the t-SNE grid, filters, facets."""

from __future__ import annotations

import csv
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from synthviz.dataset import Run, index, receptive_field
from synthviz.dataset.receptive import gradient_box
from synthviz.dataset.sources import find_images, read_image
from synthviz.errors import SynthvizError
from synthviz.layers import capture

SIZE, LAYERS, K = 64, ["_blocks.1", "_blocks.3"], 4
PHOTOS = {"cat": ["chelsea"], "things": ["astronaut", "coffee", "rocket"]}


def make_dataset(root: Path) -> Path:
    """16 variations of 4 photos in an ImageFolder layout, plus a file that is not an image."""
    import imageio.v3 as iio
    import skimage.data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, names in PHOTOS.items():
            (root / label).mkdir(parents=True)
            for name in names:
                a = getattr(skimage.data, name)()
                h, w = a.shape[:2]
                variants = {"full": a, "crop": a[h // 5 : h - h // 8, w // 6 :], "flip": a[:, ::-1],
                            "colour": np.clip(a[..., [2, 0, 1]].astype(float) * 1.2, 0, 255).astype(np.uint8)}
                for v, img in variants.items():
                    iio.imwrite(root / label / f"{name}-{v}.png", np.ascontiguousarray(img))
    (root / "things" / "broken.png").write_bytes(b"this is not a png")
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def run(dataset, embedded, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    # batches of 5 cross the class folders, the last one is partial; one worker process reads images
    return index(dataset, out, model=embedded, layers=LAYERS, size=SIZE, top_k=K, batch_size=5, workers=1,
                 progress=False)


@pytest.fixture(scope="module")
def brute(dataset, embedded):
    """Every readable image and the full activation tensors of LAYERS in one forward pass."""
    paths = find_images(dataset).paths
    good = [i for i, p in enumerate(paths) if not p.endswith("broken.png")]
    images = torch.stack([read_image(paths[i], SIZE) for i in good])
    acts = capture(embedded, images, LAYERS)
    return paths, good, images, acts


def test_topk_equals_brute_force_over_the_whole_activation_tensor(run, brute):
    paths, good, _, acts = brute
    r = Run(run)
    assert r.paths == paths and r.labels[0] == "cat" and set(r.labels) == {"cat", "things"}
    rows = list(csv.reader(open(run / "topk.csv")))
    assert rows[0] == ["layer", "unit", "rank", "path", "value", "x", "y"]
    for layer in LAYERS:
        act = acts[layer]
        c, h, w = act.shape[1:]
        flat = act.flatten(2)
        values, pos = flat.max(-1)  # (N, C)
        order = torch.argsort(values.T, dim=1, descending=True, stable=True)[:, :K]  # ties: lower index first
        lowest = torch.argsort(values.T, dim=1, stable=True)[:, :K]
        s = r.stats(layer)
        good_t = torch.tensor(good)
        assert torch.equal(s.top_i, good_t[order]) and torch.equal(s.bot_i, good_t[lowest])
        assert torch.allclose(s.top_v, values.T.gather(1, order), rtol=1e-5, atol=1e-5)
        assert torch.equal(s.top_p, pos.T.gather(1, order))
        assert np.allclose(s.mean.numpy(), values.double().mean(0).numpy(), rtol=1e-5)
        assert np.allclose(s.std.numpy(), values.double().std(0, unbiased=False).numpy(), rtol=1e-4, atol=1e-6)
        feats = r.features(layer)
        assert feats.shape == (len(paths), c)
        assert np.allclose(feats[good], values.numpy(), rtol=1e-5, atol=1e-5)
        # the CSV says the same: paths, values and the (x, y) of the maximum in the layer's grid
        mine = [row for row in rows[1:] if row[0] == layer]
        assert len(mine) == c * K
        for row in mine[: 3 * K]:
            unit, rank = int(row[1]), int(row[2])
            i = order[unit, rank - 1]
            assert row[3] == paths[good[i]] and float(row[4]) == pytest.approx(float(values[i, unit]), rel=1e-5)
            assert (int(row[6]), int(row[5])) == divmod(int(pos[i, unit]), w)


def test_reduce_mean_ranks_by_the_spatial_mean(dataset, embedded, brute, tmp_path):
    paths, good, _, acts = brute
    out = index(dataset, tmp_path / "mean", model=embedded, layers="_blocks.1", size=SIZE, reduce="mean", top_k=K,
                batch_size=8, workers=0, progress=False)
    means = acts["_blocks.1"].flatten(2).mean(-1)
    order = torch.argsort(means.T, dim=1, descending=True, stable=True)[:, :K]
    assert torch.equal(Run(out).stats("_blocks.1").top_i, torch.tensor(good)[order])


def test_the_top_patch_is_where_the_maximum_is(run, embedded):
    r = Run(run)
    layer = "_blocks.3"
    for unit in (0, 7, 21):
        best = r.top_examples(layer, unit)[0]
        image = r.image(best.index)[None]
        act = capture(embedded, image, [layer])[layer][0, unit]
        assert divmod(int(act.flatten().argmax()), act.shape[1]) == (best.y, best.x)
        # the box is what the network sees from that unit: measured independently at this size...
        assert best.box == gradient_box(embedded, layer, SIZE, best.y, best.x)
        # ...and noise everywhere outside it leaves the unit's value unchanged, noise inside changes it
        top, left, bottom, right = best.box
        inside = torch.zeros_like(image, dtype=torch.bool)
        inside[..., top:bottom, left:right] = True
        noise = torch.rand_like(image)
        outside_changed = torch.where(inside, image, noise)
        inside_changed = torch.where(inside, noise, image)
        v = lambda x: float(capture(embedded, x, [layer])[layer][0, unit, best.y, best.x])  # noqa: E731
        assert v(outside_changed) == pytest.approx(best.value, rel=1e-4, abs=1e-4)
        assert abs(v(inside_changed) - best.value) > 1e-3
        assert tuple(r.patch(best).shape) == (3, bottom - top, right - left)


def test_receptive_fields_match_the_arithmetic_of_kernels_strides_and_padding(tiny):
    # conv 3x3 s1 p1 -> conv 3x3 s2 p1 -> conv 3x3 s2 p1: extents 3, 5, 9; strides 1, 2, 4; offsets -1, -2, -4
    for layer, (extent, stride, offset) in {"relu1": (3, 1, -1), "relu2": (5, 2, -2), "relu3": (9, 4, -4)}.items():
        rf = receptive_field(tiny, layer, 32)
        assert (rf.extent, rf.stride, rf.offset) == (extent, stride, offset), layer
        assert rf.box(0, 0) == (0, 0, extent + offset, extent + offset)
    assert receptive_field(tiny, "fc", 32).whole


def test_resume_after_an_interruption_gives_identical_files(dataset, embedded, run, tmp_path):
    def interrupted(out: Path, kill_after: int | None):
        saved = tmp_path / f"state-{out.name}.npz"

        def on_batch(done: int):
            if done == 1:
                shutil.copy(out / "state.npz", saved)
            if done == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            index(dataset, out, model=embedded, layers=LAYERS, size=SIZE, top_k=K, batch_size=5, workers=0,
                  progress=False, checkpoint_every=0, on_batch=on_batch)
        assert (out / "manifest.json").exists() and not (out / "topk.csv").exists()
        if kill_after is not None:  # a kill: feature rows of batches 2-3 written, the checkpoint still at batch 1
            shutil.copy(saved, out / "state.npz")
        index(dataset, out, model=embedded, layers=LAYERS, size=SIZE, top_k=K, batch_size=5, workers=0, progress=False)

    for name, kill in (("ctrl-c", None), ("kill", 1)):
        out = tmp_path / name
        interrupted(out, kill)
        files = sorted(p.relative_to(run) for p in run.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
        for rel in files:
            a, b = (run / rel).read_bytes(), (out / rel).read_bytes()
            if rel.name in ("manifest.json", "images.csv"):  # the only place the folder's own name may appear
                a, b = a.replace(str(run).encode(), b""), b.replace(str(out).encode(), b"")
            assert a == b, f"{name}: {rel} differs"


def test_an_unreadable_file_is_listed_and_skipped(run, dataset, embedded, tmp_path):
    r = Run(run)
    broken = str(dataset / "things" / "broken.png")
    assert r.skipped == [(broken, "not an image or corrupt")]
    i = r.paths.index(broken)
    assert np.isnan(r.features("_blocks.1")[i]).all()
    assert broken not in (run / "topk.csv").read_text() and broken not in (run / "bottomk.csv").read_text()
    assert int(r.stats("_blocks.1").count) == len(r.paths) - 1
    # a list file naming a missing image and a real one
    listing = tmp_path / "list.txt"
    listing.write_text(f"missing.png\n{r.paths[0]}\n")
    out = index(listing, tmp_path / "l", model=embedded, layers="_blocks.1", size=SIZE, workers=0, progress=False)
    assert (out / "skipped.txt").read_text() == f"{tmp_path / 'missing.png'}\tnot found\n"
    with pytest.raises(SynthvizError, match="no images found"):
        index(tmp_path / "l" / "features", tmp_path / "x", model=embedded, progress=False)


def test_an_existing_index_with_other_settings_is_refused(run, dataset, embedded):
    with pytest.raises(SynthvizError, match=r"other settings \(size\)"):
        index(dataset, run, model=embedded, layers=LAYERS, size=96, top_k=K, batch_size=5, progress=False)


def test_nearest_neighbours_of_an_image_include_itself_first(run, tmp_path):
    from synthviz.dataset.neighbours import nearest

    r = Run(run)
    feats = np.asarray(r.features("_blocks.3"), dtype=np.float64)
    for i in (0, 5, 9):
        found = nearest(r, i, "_blocks.3", k=5)
        assert found[0][0] == i and found[0][1] == pytest.approx(1.0)
        unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
        sims = np.nan_to_num(unit @ unit[i], nan=-np.inf)
        assert [j for j, _ in found] == list(np.argsort(-sims, kind="stable")[:5])
    # a copy of an image outside the index finds the original first
    outside = tmp_path / "copy.png"
    shutil.copy(r.paths[7], outside)
    assert nearest(r, outside, "_blocks.3", k=3)[0][0] == 7


def test_the_tsne_grid_places_every_image_once(run):
    from synthviz.dataset.embedding import embedding_grid, pca
    from synthviz.io import resize

    r = Run(run)
    g = embedding_grid(r, "_blocks.3", method="tsne", thumb=16)
    valid = [i for i, p in enumerate(r.paths) if not p.endswith("broken.png")]
    assert sorted(g["indices"].tolist()) == valid
    assert len(set(g["cells"].tolist())) == len(valid) and g["rows"] * g["cols"] >= len(valid)
    for i, cell in zip(g["indices"], g["cells"]):
        row, col = divmod(int(cell), g["cols"])
        tile = g["picture"][:, row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16]
        assert torch.allclose(tile, resize(r.image(int(i))[None], (16, 16))[0])
    # PCA in torch agrees with scikit-learn's up to the sign of each axis
    from sklearn.decomposition import PCA

    x = np.random.default_rng(0).normal(size=(30, 6)) * [5, 3, 1, 1, 1, 1]
    ours, ref = pca(x), PCA(2).fit_transform(x)
    assert np.allclose(np.abs(ours), np.abs(ref), atol=1e-8)


def test_first_layer_filters_are_the_min_max_scaled_kernels(tiny):
    import synthviz

    result = synthviz.filters(tiny, scale=2)
    w = tiny.net.conv1.weight.detach()
    expected = (w - w.amin((1, 2, 3), keepdim=True)) / (w.amax((1, 2, 3), keepdim=True) - w.amin((1, 2, 3), keepdim=True))
    assert result.images.shape == (8, 3, 6, 6) and result.info["layer"] == "conv1"
    assert torch.allclose(result.images[:, :, ::2, ::2], expected, atol=1e-6)


def test_facets_cluster_the_top_images_and_start_from_each_cluster_mean(run, embedded, tmp_path):
    import synthviz
    from synthviz.dataset.facets import cluster_top_images, mean_images
    from synthviz.io import resize

    r = Run(run)
    clusters = cluster_top_images(r, "_blocks.3", 5, facets=2)
    assert sorted(sum(clusters, [])) == sorted(e.index for e in r.top_examples("_blocks.3", 5))
    result = synthviz.facets(embedded, run=str(run), layer="_blocks.3", unit=5, facets=2, size=SIZE, steps=0)
    starts = resize(mean_images(r, clusters), (SIZE, SIZE))
    assert result.images.shape == (2, 3, SIZE, SIZE) and result.technique == "facets"
    assert (result.images - starts).abs().mean() < 0.01  # no steps: the render is its start image
    assert result.figure.shape[0] == 3
    # on a unit page, beside the feature visualization
    from synthviz.dataset.pages import write_unit_pages

    write_unit_pages(r, tmp_path, layers=["_blocks.3"], units=[5], viz_steps=1, viz_size=SIZE, model=embedded, facets=2)
    page = (tmp_path / "units" / "_blocks.3" / "5.html").read_text()
    assert 'src="5/viz.png"' in page and 'src="5/facet-1.png"' in page and 'src="5/facet-2.png"' in page
    assert (tmp_path / "units" / "_blocks.3" / "5" / "facet-2.png").exists()
