"""Token layers in a dataset index (a tiny random torchvision ViT, 32 px, 8 px patches: a 4 x 4 grid
and a class token): the patch of a top example is the patch-grid cell of the token at the maximum,
a class token stands for the whole image and says so; activation maps of a unit's top images."""

from __future__ import annotations

import csv

import pytest
import torch

from synthviz.dataset import Run, activation_maps, index, write_unit_pages
from synthviz.errors import SynthvizError
from synthviz.layers import Tap
from synthviz.models import load_model
from test_dataset import make_dataset
from tiny import tiny_vit

SIZE, CELL, K = 32, 8, 3
EMBED, BLOCK = "encoder.dropout", "encoder.layers.encoder_layer_1"  # tokens + positions; after attention
CLS_UNIT = 5  # the class token is made the maximum of this unit


@pytest.fixture(scope="module")
def vit():
    net = tiny_vit(layers=2)
    with torch.no_grad():
        net.class_token[0, 0, CLS_UNIT] = 50.0
    return load_model(net)


@pytest.fixture(scope="module")
def run(vit, tmp_path_factory):
    data = make_dataset(tmp_path_factory.mktemp("photos"))
    return index(data, tmp_path_factory.mktemp("run") / "run", model=vit, layers=[EMBED, BLOCK], size=SIZE, top_k=K,
                 batch_size=6, workers=0, progress=False)


def tokens(vit, images, layer):
    """(B, 17, 16) raw tokens, class token first, computed independently of the index."""
    with Tap(vit, [layer], spatial=False) as tap, torch.no_grad():
        return tap(images)[layer]


def test_the_patch_of_a_token_unit_is_the_grid_cell_of_the_argmax_token(run, vit):
    r = Run(run)
    assert r.manifest["layers"][BLOCK]["tokens"] == {"prefix": 1, "h": 4, "w": 4}
    rows = {(row["layer"], int(row["unit"]), int(row["rank"])): row for row in csv.DictReader(open(run / "topk.csv"))}
    cells = 0
    good = [i for i, p in enumerate(r.paths) if not p.endswith("broken.png")]
    images = dict(zip(good, torch.stack([r.image(i) for i in good])))
    for layer in (EMBED, BLOCK):
        raw = dict(zip(good, tokens(vit, torch.stack(list(images.values())), layer)))
        for unit in range(16):
            for rank, e in enumerate(r.top_examples(layer, unit), 1):
                image = images[e.index]
                token = int(raw[e.index][:, unit].argmax())
                assert e.token == token and e.value == pytest.approx(float(raw[e.index][token, unit]), abs=1e-5)
                row = rows[(layer, unit, rank)]
                if token == 0:
                    assert e.region == "class token (whole image)" and e.box == (0, 0, SIZE, SIZE)
                    assert (row["x"], row["y"]) == ("", "")
                    continue
                y, x = divmod(token - 1, 4)
                assert e.region == "patch-grid cell" and (e.y, e.x) == (y, x)
                assert e.box == (CELL * y, CELL * x, CELL * (y + 1), CELL * (x + 1))
                assert (row["x"], row["y"]) == (str(x), str(y))
                assert torch.equal(r.patch(e), image[:, CELL * y : CELL * (y + 1), CELL * x : CELL * (x + 1)])
                cells += 1
    assert cells > 50


def test_the_grid_cell_is_the_image_region_the_token_is_made_from(run, vit):
    """Before attention a patch token depends on its cell's pixels only: noise outside the box
    leaves its value as it was, noise inside changes it."""
    r = Run(run)
    for unit in (0, 3, 9):
        e = r.top_examples(EMBED, unit)[0]
        assert e.region == "patch-grid cell"
        image = r.image(e.index)[None]
        top, left, bottom, right = e.box
        inside = torch.zeros_like(image, dtype=torch.bool)
        inside[..., top:bottom, left:right] = True
        noise = torch.rand_like(image)
        value = lambda x: float(tokens(vit, x, EMBED)[0, e.token, unit])  # noqa: E731
        assert value(torch.where(inside, image, noise)) == pytest.approx(e.value, abs=1e-5)
        assert abs(value(torch.where(inside, noise, image)) - e.value) > 1e-3


def test_a_class_token_maximum_is_the_whole_image_and_labelled_so(run, vit, tmp_path):
    r = Run(run)
    examples = r.top_examples(EMBED, CLS_UNIT)
    assert len(examples) == K and all(e.token == 0 and e.region == "class token (whole image)" for e in examples)
    assert tuple(r.patch(examples[0]).shape) == (3, SIZE, SIZE)
    write_unit_pages(run, tmp_path, layers=[EMBED], units=[CLS_UNIT, 0], viz_steps=0, model=vit)
    page = (tmp_path / "units" / EMBED / f"{CLS_UNIT}.html").read_text()
    assert page.count("class token (whole image)") == 2 * K and "the image patch of the token at the maximum" in page


def test_activation_maps_of_a_units_top_images(run, vit):
    r = Run(run)
    for layer, unit in ((BLOCK, 2), (EMBED, 7)):
        examples = r.top_examples(layer, unit, 2)
        maps = activation_maps(run, layer, unit, k=2, model=vit, raw=True)
        images = torch.stack([r.image(e.index) for e in examples])
        expected = tokens(vit, images, layer)[:, 1:, unit].reshape(2, 4, 4)  # patch tokens on their grid
        assert torch.allclose(maps, expected, atol=1e-6)
        overlays = activation_maps(run, layer, unit, k=2, model=vit)
        assert overlays.shape == (2, 3, SIZE, SIZE) and 0 <= overlays.min() and overlays.max() <= 1
        # red is laid most where the map is highest: the cell of the map's maximum gains red there
        for image, over, amap in zip(images, overlays, maps):
            y, x = divmod(int(amap.argmax()), 4)
            lo, hi = divmod(int(amap.argmin()), 4)
            gain = (over[0] - image[0]) - (over[1:] - image[1:]).mean(0)
            cell = lambda yy, xx: float(gain[CELL * yy + 3 : CELL * yy + 5, CELL * xx + 3 : CELL * xx + 5].mean())  # noqa: E731
            assert cell(y, x) > cell(lo, hi)


def test_activation_maps_need_a_layer_with_positions(vit, tmp_path):
    data = make_dataset(tmp_path / "photos")
    out = index(data, tmp_path / "run", model=vit, layers="heads.head", size=SIZE, top_k=2, batch_size=8, workers=0,
                progress=False)
    with pytest.raises(SynthvizError, match="no activation map"):
        activation_maps(out, "heads.head", 0, model=vit)
