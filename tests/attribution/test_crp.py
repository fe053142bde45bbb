"""CRP (concept relevance propagation) against zennit-crp's ``CondAttribution`` with the same rules,
and known answers: all channels together give LRP's map, a dictionary of one-hot atoms gives the
channels' maps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import synthviz
from synthviz.attribution.crp import crp
from synthviz.attribution.lrp import lrp
from synthviz.models import Model


def net_with_batch_norms() -> nn.Sequential:
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5))
    for mod in net.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 2)
            mod.weight.data.normal_()
            mod.bias.data.normal_(0, 0.1)
    return net.eval()


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.flatten().argsort().argsort().double(), b.flatten().argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def test_crp_heatmaps_match_zennit_crp_cond_attribution():
    pytest.importorskip("crp.attribution")
    from crp.attribution import CondAttribution
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonGammaBox

    net = net_with_batch_norms()
    m = Model(net, classes=[str(i) for i in range(5)], name="small", min_size=8)
    x, t = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0)), torch.tensor([1, 3])
    ours = crp(m, x, t, layer="5", concepts="2,6")
    assert ours.info["concepts"] == [[2, 6], [2, 6]]
    xn = m.normalize(x)
    low, high = m.normalize(torch.zeros(1, 3, 1, 1)), m.normalize(torch.ones(1, 3, 1, 1))
    composite = EpsilonGammaBox(low=low, high=high, canonizers=[SequentialMergeBatchNorm()])
    theirs = CondAttribution(net).__call__(xn.clone().requires_grad_(True),
                                           [{"y": [int(c)], "5": [2, 6]} for c in t], composite).heatmap
    for i in range(2):
        assert spearman(ours.maps[i, 0], theirs[i]) >= 0.99
    assert (ours.maps[:, 0] - theirs).norm() < 1e-3 * theirs.norm()  # zennit runs merged convolutions: 2e-5 here


def test_all_channels_together_give_lrp_and_the_top_channel_is_the_default(tiny):
    x, t = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)), torch.tensor([2, 7])
    whole = crp(tiny, x, t, layer="relu2", concepts="all")
    full = lrp(tiny, x, t)
    assert torch.allclose(whole.raw, full.raw, atol=1e-6 * float(full.raw.abs().max()))
    top = crp(tiny, x, t, layer="relu1")
    per_channel = torch.tensor([crp(tiny, x, t, layer="relu1", concepts=c).info["concept_relevance"] for c in range(8)])
    assert top.info["concepts"] == [[int(c)] for c in per_channel.argmax(0)]
    assert top.info["concept_relevance"] == pytest.approx(per_channel.amax(0).tolist(), rel=1e-5)
    maps = synthviz.saliency(tiny, x, method="crp", target=t, layer="relu2", concepts=[3])
    assert maps.shape == (2, 1, 16, 16)


def test_a_dictionary_of_one_hot_atoms_gives_the_channels_maps(tiny, tmp_path):
    from synthviz.concepts.dictionary import Dictionary

    Dictionary("nmf", "relu2", "tiny", torch.eye(16), torch.zeros(16)).save(tmp_path / "dictionary.pt")
    x, t = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2)), torch.tensor([4])
    by_run = crp(tiny, x, t, run=tmp_path, concepts="3,5")
    by_channel = crp(tiny, x, t, layer="relu2", concepts="3,5")
    assert by_run.info["layer"] == "relu2" and by_run.info["concepts"] == [[3, 5]]
    assert (by_run.raw - by_channel.raw).norm() < 1e-2 * by_channel.raw.norm()
    with pytest.raises(synthviz.errors.SynthvizError, match="not relu1"):
        crp(tiny, x, t, run=tmp_path, layer="relu1")
