"""`synthviz index --relevance CLASS`: RelMax reference images (Achtibat et al.), ranked by a unit's CRP
relevance for the class, beside ActMax.

Known answer: a gated network whose class score reads unit 0 (the red channel) only where unit 1
(green) is off. On red-and-green images unit 0 fires most, yet passes the class nothing: ActMax
ranks them first, RelMax gives them relevance 0 and ranks them last, and nowhere else do the two
differ. Peer: on the embedded model, the RelMax ranking and values equal zennit-crp's
`ChannelConcept.reference_sampling` (what its `RelMax` keeps) on the same relevances."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from synthviz.dataset import index
from synthviz.dataset.run import Run
from synthviz.io import save_image
from synthviz.models import Model


class Gated(nn.Module):
    """act1 = (red, green); class 0's logit = mean over positions of relu(red - 10 · green)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 2, 1, bias=False)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(2, 1, 1, bias=False)
        self.act2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])[:, :, None, None])
            self.conv2.weight.copy_(torch.tensor([[1.0, -10.0]])[:, :, None, None])
            self.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))

    def forward(self, x):
        return self.fc(self.pool(self.act2(self.conv2(self.act1(self.conv1(x))))).flatten(1))


def rows(path, unit: int) -> list[tuple[str, float]]:
    return [(r["path"].rsplit("/", 1)[-1], float(r["value"])) for r in csv.DictReader(open(path)) if int(r["unit"]) == unit]


def test_relmax_differs_from_actmax_exactly_where_the_unit_feeds_the_class_nothing(tmp_path):
    model = Model(Gated(), mean=(0, 0, 0), std=(1, 1, 1), classes=["gated", "other"], name="gated", min_size=8)
    colours = {"both": (1.0, 1.0), "red": (0.6, 0.0), "dark": (0.2, 0.0)}  # (red, green)
    for kind, (r, g) in colours.items():
        for i in range(3):
            image = torch.zeros(3, 16, 16)
            image[0], image[1] = r - 0.05 * i, g
            save_image(image, tmp_path / "data" / f"{kind}-{i}.png")
    run = index(tmp_path / "data", tmp_path / "run", model=model, layers="act1", size=16, top_k=9, batch_size=4,
                workers=0, progress=False, relevance="gated")
    act, rel = rows(run / "topk.csv", 0), rows(run / "relmax.csv", 0)
    assert [name.split("-")[0] for name, _ in act] == ["both"] * 3 + ["red"] * 3 + ["dark"] * 3  # ActMax: by firing
    assert {name.split("-")[0] for name, _ in rel[:6]} == {"red", "dark"}  # RelMax: where it feeds the class
    assert [name.split("-")[0] for name, _ in rel[6:]] == ["both"] * 3 and all(v == 0 for _, v in rel[6:])
    assert all(abs(v - 1) < 1e-4 for _, v in rel[:6])  # all of the class's relevance at the layer is unit 0's
    r = Run(run)
    assert r.relevance == {"class": 0, "name": "gated"}
    assert [e.path for e in r.top_examples("act1", 0, relevance=True)][:6] == [str(tmp_path / "data" / n)
                                                                                 for n, _ in rel[:6]]
    assert r.layers == ["act1"] and (run / "features" / "act1#relevance.npy").exists()

    from synthviz.dataset.pages import write_unit_pages

    write_unit_pages(run, tmp_path / "site", units=[0], viz_steps=0, model=model, thumb=16)
    page = (tmp_path / "site" / "units" / "act1" / "0.html").read_text()
    assert "(RelMax)" in page and "relmax-1.png" in page and "Top patches" in page


def test_relmax_equals_zennit_crp_reference_sampling_on_the_same_relevances(tmp_path):
    pytest.importorskip("crp")
    from crp.concepts import ChannelConcept

    from synthviz.attribution.crp import layer_relevance
    from synthviz.dataset.sources import find_images, read_image
    from tests.tiny import make_tiny_model

    model = make_tiny_model()
    torch.manual_seed(1)
    for i in range(12):
        save_image(torch.rand(3, 32, 32), tmp_path / "data" / f"{i:02d}.png")
    layer, target = "relu2", 3
    run = index(tmp_path / "data", tmp_path / "run", model=model, layers=layer, size=32, top_k=6, batch_size=5,
                workers=0, progress=False, relevance=target)
    source = find_images(tmp_path / "data")
    images = torch.stack([read_image(p, 32) for p in source.paths])
    rel = layer_relevance(model, images, torch.full((len(images),), target), [layer])[layer]  # (12, 16, 8, 8)
    order, values, where = ChannelConcept().reference_sampling(rel, max_target="sum", abs_norm=True)  # (N, C) each
    names = [p.rsplit("/", 1)[-1] for p in source.paths]
    table = list(csv.DictReader(open(run / "relmax.csv")))
    for unit in range(rel.shape[1]):
        ours = rows(run / "relmax.csv", unit)
        assert [n for n, _ in ours] == [names[i] for i in order[:6, unit]], unit
        torch.testing.assert_close(torch.tensor([v for _, v in ours]), values[:6, unit].float(), rtol=1e-4, atol=1e-6)
        xy = [(int(r["x"]), int(r["y"])) for r in table if int(r["unit"]) == unit]
        w = rel.shape[-1]
        assert xy == [(int(p) % w, int(p) // w) for p in where[:6, unit]]  # the most relevant position


def test_relevance_needs_a_class(tmp_path):
    from synthviz.errors import SynthvizError
    from tests.clihelp import one_line_error, run
    from tests.tiny import make_tiny_model

    save_image(torch.rand(3, 32, 32), tmp_path / "data" / "a.png")
    model = make_tiny_model()
    with pytest.raises(SynthvizError, match="class"):
        index(tmp_path / "data", tmp_path / "r", model=model, size=32, relevance="no such class", progress=False)
    one_line_error(run("index", tmp_path / "data", "--out", tmp_path / "r", "--size", "32", "--relevance", "no such class"),
                   "class")  # the option reaches the index: the class is looked up in the model's names
