"""TCAV scores against Captum's ``TCAV`` (captum.concept) with the same CAVs: equal, run by run."""

from __future__ import annotations

import pytest
import torch

import synthviz
from synthviz.models import Model
from tiny import TinyNet


def test_tcav_scores_equal_captums_with_the_same_cavs(tmp_path):
    concept_mod = pytest.importorskip("captum.concept")
    from captum.concept._utils.classifier import Classifier

    torch.manual_seed(0)
    net = TinyNet()
    model = Model(net, mean=None, std=None, name="tiny", min_size=8)  # the network sees the [0, 1] images
    gen = torch.Generator().manual_seed(1)
    concept = torch.rand(8, 3, 16, 16, generator=gen) * torch.tensor([1.0, 0.3, 0.3]).view(1, 3, 1, 1)
    random, inputs = torch.rand(16, 3, 16, 16, generator=gen), torch.rand(12, 3, 16, 16, generator=gen)
    runs = 4
    result = synthviz.tcav(model, concepts={"reddish": concept}, random=random, inputs=inputs, target=5,
                           layers=["relu2"], runs=runs, nulls=9, size=16, cache=tmp_path / "cavs", progress=False)
    ours = result.info["run_scores"]["relu2/reddish"]
    (path,) = (tmp_path / "cavs").glob("*.pt")
    cavs = torch.load(path, weights_only=True)["cavs"]

    class SameCAVs(Classifier):
        """Captum's classifier interface handing out our CAVs, one experimental set after another."""

        def __init__(self):
            self.queue = [(cav, r + 1) for r, cav in enumerate(cavs)]

        def train_and_eval(self, dataloader, **kwargs):
            self.cav, self.random_id = self.queue.pop(0)
            return {"accs": torch.tensor(1.0)}

        def weights(self):
            return torch.stack([self.cav, -self.cav])  # rows: the concept (id 0), then the random set

        def classes(self):
            return [0, self.random_id]

    reddish = concept_mod.Concept(0, "reddish", [concept])
    randoms = [concept_mod.Concept(r + 1, f"random{r}", [random]) for r in range(runs)]
    tcav = concept_mod.TCAV(net, ["relu2"], classifier=SameCAVs(), save_path=str(tmp_path / "captum"))
    scores = tcav.interpret(inputs, [[reddish, rnd] for rnd in randoms], target=5)
    theirs = [float(scores[f"0-{r + 1}"]["relu2"]["sign_count"][0]) for r in range(runs)]
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert any(0 < v < 1 for v in theirs)  # graded scores, not a trivial 0 or 1 everywhere
    assert result.info["rows"][0]["score"] == pytest.approx(sum(theirs) / runs, abs=1e-6)
