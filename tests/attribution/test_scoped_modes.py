"""Activation modes entered only inside activation modules: the same answers as around the whole
forward, fewer calls seen, and the whole forward again for a network with functional activations."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synthviz.attribution.core import input_gradient
from synthviz.attribution.deeplift import deeplift_gradients
from synthviz.attribution.guided import DeconvReLU, GuidedReLU
from synthviz.attribution.scoped import _SCOPABLE
from synthviz.models import Model


def counting(mode_type):
    class Counting(mode_type):
        """The mode, also counting every tensor call it sees."""

        total = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.total += 1
            return super().__torch_function__(func, types, args, kwargs)

    return Counting


class Modules(nn.Module):
    """Activations only as modules: in place, ReLU6 and one module called twice."""

    def __init__(self):
        super().__init__()
        self.c1, self.bn, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1)
        self.act, self.six, self.fc = nn.ReLU(inplace=True), nn.ReLU6(), nn.Linear(8, 3)

    def forward(self, x):
        x = self.act(self.bn(self.c1(x)))
        x = self.six(4 * self.act(self.c2(x)) + x)
        return self.fc(x.mean((2, 3)))


class Functional(Modules):
    def forward(self, x):
        x = self.act(self.bn(self.c1(x)))
        x = F.relu(4 * self.c2(x)) + x  # outside any module: the mode must see the whole forward
        return self.fc(self.six(x).mean((2, 3)))


def toy(net_type, seed=0):
    torch.manual_seed(seed)
    net = net_type()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 1.5)
    return Model(net, mean=(0, 0, 0), std=(1, 1, 1), classes=["a", "b", "c"], name="toy", min_size=4)


@pytest.mark.parametrize("mode_type", [GuidedReLU, DeconvReLU])
@pytest.mark.parametrize("fuse", [True, False])
def test_scoped_mode_gives_the_whole_forward_answer_and_sees_only_the_activations(mode_type, fuse):
    model = toy(Modules)
    model.fuse = fuse
    x, t = torch.rand(2, 3, 16, 16), torch.tensor([0, 2])
    first, second = counting(mode_type)(), counting(mode_type)()
    g1, s1 = input_gradient(model, x, t, mode=first)
    g2, s2 = input_gradient(model, x, t, mode=second)
    assert first.calls == second.calls == 3  # the ReLU twice, the ReLU6 once
    assert first.total > 5 * first.calls  # the whole forward: convs, sums, means...
    # deconvnet: the mode only inside the activation modules; guided: no mode, a gradient hook each
    assert second.total == second.seen == (0 if mode_type is GuidedReLU else 3)
    assert torch.equal(g1, g2) and torch.equal(s1, s2)
    assert not torch.equal(g1, input_gradient(model, x, t)[0])  # the mode did change the backward
    assert torch._C._len_torch_function_stack() == 0
    net = model.runner(x)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_functional_activations_keep_the_whole_forward_in_the_mode():
    model = toy(Functional)
    x, t = torch.rand(2, 3, 16, 16), torch.tensor([1, 1])
    first, second = counting(GuidedReLU)(), counting(GuidedReLU)()
    g1, _ = input_gradient(model, x, t, mode=first)
    g2, _ = input_gradient(model, x, t, mode=second)
    assert _SCOPABLE[model.runner(x)][1] is False
    assert second.total == first.total > second.seen == 3  # F.relu seen: the mode stayed around everything
    assert torch.equal(g1, g2)


def test_scoped_deeplift_keeps_summation_to_delta():
    model = toy(Modules, seed=1)
    x, base, t = torch.rand(2, 3, 16, 16), torch.zeros(1, 3, 16, 16), torch.tensor([0, 1])
    answers = []
    for _ in range(2):  # the first call checks the network, the second runs scoped
        mult, fx, fb, mode = deeplift_gradients(model, x, base, t)
        answers.append(((x - base) * mult).flatten(1).sum(1))
        assert mode.calls == 3
        assert torch.allclose(answers[-1], fx - fb, rtol=1e-4, atol=1e-6)
    assert torch.allclose(answers[0], answers[1], rtol=1e-6, atol=1e-7)
    assert _SCOPABLE[model.runner(x)][1] is True
