"""Torch-function modes entered only inside a network's activation modules.

Guided backprop, DeconvNet and DeepLIFT change the backward of element-wise activations through a
``TorchFunctionMode``. Around a whole forward such a mode sees every tensor call (about 1 100 for
EfficientNet-Lite0, of which 33 are activations), and at batch 1 that Python dispatch costs about
as much as the network. Entered by forward hooks around each activation module instead, it sees
only the activation calls.

That is only right when the network calls no activation outside such modules (``F.relu`` in a
``forward`` method). So the first forward of a network runs the mode around everything and counts
the activation calls made outside activation modules; only a network where that count is zero gets
the scoped mode afterwards. A mode takes part by counting the activation calls it sees in ``seen``.

A mode whose change is a function of the gradient at the activation's output alone (guided
backprop: the activation's own backward keeps the open range, then only positive gradient) may
say so with ``output_grad`` (that function) and ``changes(module)``; on a scoped network it is
then not entered at all: a tensor hook on each changed module's output applies it (``calls``
counts them), and the network runs at the speed of a plain gradient.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

# leaf modules whose forward is one element-wise activation call
ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.GELU, nn.ELU,
                      nn.LeakyReLU, nn.Softplus, nn.Mish, nn.Sigmoid, nn.Tanh)

# net -> (its modules' ids when checked, whether every activation call happened inside a module)
_SCOPABLE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _hooks(modules: list[nn.Module], pre, post) -> list:
    handles = []
    for m in modules:
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post, always_call=True))  # also on an error: the mode pops
    return handles


@contextlib.contextmanager
def _removed_after(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _scoped_hooks(mode: TorchFunctionMode, modules: list[nn.Module]) -> list:
    """Hooks that make ``mode`` act inside ``modules`` only: the mode entered around each call, or
    (a mode with ``output_grad``) no mode, a gradient hook on each changed module's output."""
    if getattr(mode, "output_grad", None) is not None:
        def on_output(module, args, output):
            if torch.is_grad_enabled() and isinstance(output, torch.Tensor) and output.requires_grad:
                mode.calls += 1
                output.register_hook(mode.output_grad)

        return [m.register_forward_hook(on_output) for m in modules if mode.changes(m)]

    def enter(module, args):
        mode.__enter__()

    def leave(module, args, output):
        mode.__exit__(None, None, None)

    return _hooks(modules, enter, leave)


@contextlib.contextmanager
def activation_mode(mode: TorchFunctionMode, net: nn.Module) -> Iterator[TorchFunctionMode]:
    """``with mode:`` for forwards of ``net``, entered only inside its activation modules once the
    network is known to call activations nowhere else (see the module's docstring)."""
    key = tuple(map(id, net.modules()))
    modules = [m for m in net.modules() if isinstance(m, ACTIVATION_MODULES)]
    known = _SCOPABLE.get(net)
    known = known[1] if known is not None and known[0] == key else None
    if known:
        with _removed_after(_scoped_hooks(mode, modules)):
            yield mode
        return
    if known is False or not modules:
        with mode:
            yield mode
        return
    # first forward: the whole forward in the mode, counting the calls seen inside the modules
    inside, before = [0], []

    def mark(module, args):
        before.append(mode.seen)

    def count(module, args, output):
        inside[0] += mode.seen - before.pop()

    with _removed_after(_hooks(modules, mark, count)), mode:
        yield mode
    if mode.seen:
        _SCOPABLE[net] = (key, inside[0] == mode.seen)
