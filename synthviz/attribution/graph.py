"""Graph surgery with ``torch.fx``: the part of a network after a layer (so a method that edits a
layer's output runs only what follows it), and the feature maps a global-average-pool head reads.

Traces are cached per network (weakly); a network fx cannot trace gets ``None`` and the callers
fall back to full forward passes through :class:`synthviz.layers.Tap`.
"""

from __future__ import annotations

import weakref

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


class _Cut(Exception):
    """The part after the layer reads a value computed before it (a skip connection around it)."""


# subclasses of these that override forward (EfficientNet's Conv2dStaticSamePadding) stay one node:
# fx would trace into them, and a layer that is not a node cannot be cut at
_LEAVES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm,
           nn.GroupNorm)


class _Tracer(fx.Tracer):
    """torch.fx's tracer that keeps every subclass of a standard layer as one ``call_module`` node."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, module_qualified_name)


def traced(net: nn.Module) -> fx.GraphModule | None:
    """``net`` traced by torch.fx (sharing its modules and parameters), or None when it cannot be."""
    cache = _CACHE.setdefault(net, {})
    if "graph" not in cache:
        try:
            cache["graph"] = fx.GraphModule(net, _Tracer().trace(net))
        except Exception:  # data-dependent control flow, unsupported ops...: no graph, the slow path
            cache["graph"] = None
    return cache["graph"]


def _is_batch_size(node: fx.Node) -> bool:
    """``t.size(0)`` (or ``t.shape[0]``): the batch size, whichever tensor it is read from."""
    if node.op == "call_method" and node.target == "size":
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return dim == 0
    return False


def tail(net: nn.Module, layer: str) -> fx.GraphModule | None:
    """The network after ``layer`` as a module ``tail(layer_output) -> output``, or None when the
    network cannot be traced, ``layer`` is called more than once, or later layers read values from
    before it (then run the whole network with the layer's output replaced)."""
    cache = _CACHE.setdefault(net, {})
    key = ("tail", layer)
    if key in cache:
        return cache[key]
    gm = traced(net)
    cache[key] = None
    if gm is None:
        return None
    nodes = list(gm.graph.nodes)
    calls = [n for n in nodes if n.op == "call_module" and n.target == layer]
    if len(calls) != 1:
        return None
    start = nodes.index(calls[0])
    before = set(nodes[:start])
    graph = fx.Graph()
    env = {calls[0]: graph.placeholder("act")}

    def lookup(n: fx.Node):
        if n in env:
            return env[n]
        if n in before and n.op == "get_attr":
            env[n] = graph.node_copy(n, lookup)
        elif n in before and _is_batch_size(n):  # the batch size read from the input: read it here
            env[n] = graph.call_method("size", (env[calls[0]], 0))
        else:
            raise _Cut
        return env[n]

    try:
        for n in nodes[start + 1:]:
            env[n] = graph.node_copy(n, lookup)
    except _Cut:
        return None
    cache[key] = fx.GraphModule(gm, graph)
    return cache[key]


_SKIP_MODULES = (nn.Dropout, nn.Identity, nn.Flatten)
_SKIP_METHODS = {"view", "reshape", "flatten", "squeeze", "contiguous"}


def _is_gap(node: fx.Node, gm: fx.GraphModule) -> bool:
    """Global average pooling: AdaptiveAvgPool2d(1), F.adaptive_avg_pool2d(x, 1), x.mean((2, 3))."""
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        return isinstance(mod, nn.AdaptiveAvgPool2d) and mod.output_size in (1, (1, 1))
    if node.op == "call_function" and node.target is F.adaptive_avg_pool2d:
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return size in (1, (1, 1))
    if node.op in ("call_method", "call_function") and node.target in ("mean", torch.mean):
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return isinstance(dims, (tuple, list)) and sorted(d % 4 for d in dims) == [2, 3]
    return False


def gap_head(net: nn.Module) -> tuple[fx.GraphModule, nn.Linear] | None:
    """For a network ending in global average pooling + one linear layer: a module returning
    ``(feature maps the pooling reads (B, C, h, w), logits)`` and that linear layer; else None."""
    cache = _CACHE.setdefault(net, {})
    if "gap" in cache:
        return cache["gap"]
    cache["gap"] = None
    gm = traced(net)
    if gm is None:
        return None
    out = next(n for n in gm.graph.nodes if n.op == "output")
    fc_node = out.args[0]
    if not (isinstance(fc_node, fx.Node) and fc_node.op == "call_module"
            and isinstance(gm.get_submodule(fc_node.target), nn.Linear)):
        return None
    node = fc_node.args[0]
    while isinstance(node, fx.Node) and not _is_gap(node, gm):
        skip = ((node.op == "call_module" and isinstance(gm.get_submodule(node.target), _SKIP_MODULES))
                or (node.op == "call_method" and node.target in _SKIP_METHODS)
                or (node.op == "call_function" and node.target is torch.flatten))
        if not skip:
            return None
        node = node.args[0]
    if not isinstance(node, fx.Node):
        return None
    graph = fx.Graph()
    env: dict = {}
    logits = graph.graph_copy(gm.graph, env)
    graph.output((env[node.args[0]], logits))
    cache["gap"] = (fx.GraphModule(gm, graph), gm.get_submodule(fc_node.target))
    return cache["gap"]
