"""A user's model is bit for bit the same after every technique and every saliency method:
state dict (weights and BatchNorm running statistics), every module's ``training`` flag, every
parameter's ``requires_grad``, no hooks left, and the device it was on (issue 11)."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

import synthviz
from synthviz.techniques.stylize import EXAMPLE_NET
from synthviz.attribution import method_names


class UserNet(nn.Module):
    """A model as a user builds it: BatchNorm, left in train mode, one frozen layer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 1000)
        self.conv1.requires_grad_(False)  # a mix of flags that must come back as they were

    def forward(self, x):
        x = self.bn1(self.conv1(x)).relu()
        x = self.bn2(self.conv2(x)).relu()
        return self.fc(self.pool(self.conv3(x).relu()).flatten(1))


def fingerprint(net: nn.Module) -> tuple:
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in net.modules())
    return (digest.hexdigest(), [(n, m.training) for n, m in net.named_modules()],
            [(n, p.requires_grad) for n, p in net.named_parameters()], hooks,
            {p.device for p in net.parameters()}, [n for n, _ in net.named_modules()])


IMAGE = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
FAST = {"steps": 1}
PHOTOS = [torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(i)) for i in range(4)]
CALLS = {
    "classviz": lambda net: synthviz.classviz(net, 3, size=32, **FAST),
    "probe": lambda net: synthviz.probe(net, "conv2", "0-1", size=32, **FAST),
    "fool": lambda net: synthviz.fool(net, IMAGE, **FAST),
    "dream": lambda net: synthviz.dream(net, IMAGE, layer="conv2", octaves=1, **FAST),
    "invert": lambda net: synthviz.invert(net, IMAGE, layer="conv2", size=32, **FAST),
    "saliency_figure": lambda net: synthviz.saliency_figure(net, IMAGE, methods="gradient,gradcam", layer="conv3",
                                                            size=64),
    "sanity": lambda net: synthviz.sanity(net, IMAGE, method="gradient", size=64, depth=2),
    "style": lambda net: synthviz.style(net, IMAGE, IMAGE, size=64, scales=1, content_layer="conv2",
                                        style_layers="conv1,conv2", **FAST),
    "neighbours": lambda net: synthviz.neighbours(net, PHOTOS[0], images=PHOTOS, layer="conv2", k=2, size=64, thumb=32),
    "embedding": lambda net: synthviz.embedding(net, images=PHOTOS, layer="conv2", method="pca", size=64, thumb=16),
    "filters": lambda net: synthviz.filters(net, scale=2),
    "facets": lambda net: synthviz.facets(net, images=PHOTOS, layer="conv2", unit=0, facets=2, size=64, **FAST),
    "texture": lambda net: synthviz.texture(net, IMAGE, size=64, scales=1, layers="conv1,conv2", **FAST),
    "accentuate": lambda net: synthviz.accentuate(net, IMAGE, layer="conv2", channel=0, size=32, **FAST),
    "attack_map": lambda net: synthviz.attack_map(net, IMAGE, method="gradient", size=64, **FAST),
    "evaluate": lambda net: synthviz.evaluate(net, IMAGE, methods="gradient", size=64, checks="", curve_steps=2,
                                              samples=2),
    "tcav": lambda net: synthviz.tcav(net, concepts=[torch.cat(PHOTOS[:2])], random=torch.cat(PHOTOS * 2), inputs=IMAGE,
                                      target=3, layers=["conv2"], runs=2, nulls=2, size=32, progress=False),
    "learn_concepts": lambda net: synthviz.learn_concepts(net, PHOTOS, layer="conv2", concepts=2, size=32),
    "concept_map": lambda net: synthviz.concept_map(net, IMAGE, images=PHOTOS, layer="conv2", concepts=2, size=32),
    "atlas": lambda net: synthviz.atlas(net, images=PHOTOS, layer="conv2", grid=2, size=32, steps=1, method="pca",
                                        samples_per_image=2, index_size=64, min_count=1),
    "blocks": lambda net: synthviz.blocks(net, IMAGE, layer="conv2", groups=2, size=32, steps=1, image_size=64,
                                          dictionary_units=2),
    "stylize": lambda net: synthviz.stylize(net, IMAGE, net=EXAMPLE_NET, mask_from_saliency=True,
                                            saliency_method="gradient", size=64),
}


def test_every_registered_technique_is_covered():
    assert sorted(CALLS) == sorted(synthviz.TECHNIQUES.names())


@pytest.mark.parametrize("name", sorted(CALLS))
def test_technique_leaves_the_users_model_bit_for_bit(name):
    net = UserNet().train()
    before = fingerprint(net)
    CALLS[name](net)
    assert fingerprint(net) == before


@pytest.mark.parametrize("method", method_names("all"))
def test_saliency_method_leaves_the_users_model_bit_for_bit(method):
    net = UserNet().train()
    before = fingerprint(net)
    maps = synthviz.saliency(net, IMAGE, method=method, layer="conv3", samples=2, steps=2, window=32, stride=32)
    assert maps.shape == (1, 1, 64, 64)
    assert fingerprint(net) == before


def test_the_fingerprint_sees_a_batchnorm_update():
    net = UserNet().train()
    before = fingerprint(net)
    net(IMAGE)  # a train-mode forward moves the running statistics
    assert fingerprint(net) != before
