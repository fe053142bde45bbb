"""Layer-wise relevance propagation (Bach et al. 2015) with Montavon et al.'s rule composites.

The model is never modified: an :class:`LRPMode` (a ``TorchFunctionMode``) catches the calls of one
forward pass and gives each a backward that carries relevance instead of gradient:

* ``F.conv2d`` / ``F.linear``: the composite's rule for the layer type — the first layer of the
  network gets z^B (the box [0, 1] in the model's normalised space), convolutions γ (``epsilon_gamma_box``)
  or z⁺ = α1β0 (``epsilon_plus``), dense layers ε; the ``epsilon`` composite uses ε everywhere
  (``epsilon=0``: the z-rule, which equals gradient × input on bias-free ReLU networks).
* ``F.batch_norm`` (eval mode) right after a convolution / linear layer: merged into it — the rule
  runs on the merged weights a·W and bias a·b + c (zennit's ``MergeBatchNorm`` canonizer).
* ``a + b`` or ``a += b`` of two activations of one shape (residual connections): relevance split
  in proportion to a and b (zennit's residual canonizers with the ``Norm`` rule).
* average pooling (``avg_pool2d``, ``adaptive_avg_pool2d``, ``mean``): the ``Norm`` rule.
* element-wise activations: relevance passes unchanged (zennit's ``Pass``).
* everything else keeps its gradient: max pooling sends relevance to the maximum (winner takes
  all), reshapes, padding and concatenation route it; products of two activations (gates) are
  not conserving.

Relevance starts as the target score, so Σ relevance ≈ f(x) up to what biases and stabilisers
absorb; ``info["relevance_sum"]`` and ``info["score"]`` report both. The rules match zennit's
(``Epsilon``, ``Gamma``, ``ZPlus``, ``ZBox``, ``Norm``) with the stabiliser z + ε·sign(z).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import SynthvizError, did_you_mean
from ..models import Model
from .core import REDUCTIONS, Attribution, target_scores
from .deeplift import parse_elementwise
from .registry import register_method


def stabilize(z: torch.Tensor, eps: float) -> torch.Tensor:
    """z + ε·sign(z), with sign(0) = +1 (zennit's stabiliser)."""
    return z + eps * (2.0 * (z >= 0) - 1.0)


def _terms(op, leaves, terms):
    """Outputs op(leaves[i], w, b) for each term (i, w, b), differentiable w.r.t. the leaves."""
    leaves = [t.detach().requires_grad_(True) for t in leaves]
    with torch.enable_grad():
        outs = [op(leaves[i], w, b) for i, w, b in terms]
    return leaves, outs


def _pull(leaves, outs, seeds):
    """Σ_k J_kᵀ seed_k per leaf, in one backward call: [leaf ⊙ gradient] per leaf."""
    grads = torch.autograd.grad(outs, leaves, seeds, allow_unused=True)
    return [t.detach() * (g if g is not None else 0) for t, g in zip(leaves, grads)]


def _pos(t):
    return None if t is None else t.clamp(min=0)


def rule_epsilon(op, x, w, b, r, sign, eps: float = 1e-6, **_):
    """ε-rule: R_in = x ⊙ Wᵀ (R / (z + ε sign z))."""
    (xl,), (z,) = _terms(op, [x], [(0, w, b)])
    return _pull([xl], [z], [r / stabilize(z.detach(), max(eps, 1e-12))])[0]


def rule_zplus(op, x, w, b, r, sign, stabilizer: float = 1e-6, **_):
    """z⁺ (= α1β0, zennit's ``ZPlus``): only the positive contributions x⁺W⁺ + x⁻W⁻ (+ b⁺)."""
    leaves, outs = _terms(op, [x.clamp(min=0), x.clamp(max=0)], [(0, w.clamp(min=0), _pos(b)),
                                                                  (1, w.clamp(max=0), None)])
    s = r / stabilize(outs[0].detach() + outs[1].detach(), stabilizer)
    return sum(_pull(leaves, outs, [s, s]))


def rule_gamma(op, x, w, b, r, sign, gamma: float = 0.25, stabilizer: float = 1e-6, **_):
    """γ-rule (zennit's generalised ``Gamma``): positive outputs favour W + γW⁺, negative W + γW⁻."""
    wp, wn = w + gamma * w.clamp(min=0), w + gamma * w.clamp(max=0)
    bp = None if b is None else b + gamma * b.clamp(min=0)
    bn = None if b is None else b + gamma * b.clamp(max=0)
    leaves, outs = _terms(op, [x.clamp(min=0), x.clamp(max=0)],
                          [(0, wp, bp), (1, wn, None), (0, wn, bn), (1, wp, None)])
    o = [t.detach() for t in outs]
    sp = (sign > 0) * r / stabilize(o[0] + o[1], stabilizer)
    sn = (sign < 0) * r / stabilize(o[2] + o[3], stabilizer)
    return sum(_pull(leaves, outs, [sp, sp, sn, sn]))


def rule_zbox(op, x, w, b, r, sign, low=None, high=None, stabilizer: float = 1e-6, **_):
    """z^B (Montavon 2017) for inputs bounded by ``low`` ≤ x ≤ ``high``: z = Wx − W⁺l − W⁻h."""
    leaves, outs = _terms(op, [x, low, high], [(0, w, None), (1, w.clamp(min=0), None), (2, w.clamp(max=0), None)])
    s = r / stabilize(outs[0].detach() - outs[1].detach() - outs[2].detach(), stabilizer)
    rx, rl, rh = _pull(leaves, outs, [s, s, s])
    return rx - rl - rh


RULES: dict[str, Callable] = {"epsilon": rule_epsilon, "zplus": rule_zplus, "gamma": rule_gamma, "zbox": rule_zbox}

# composite -> rule per layer kind ("first" only where the input bounds are known)
COMPOSITES: dict[str, dict[str, str]] = {
    "epsilon_gamma_box": {"first": "zbox", "conv": "gamma", "linear": "epsilon"},
    "epsilon_plus": {"first": "zplus", "conv": "zplus", "linear": "epsilon"},
    "epsilon": {"first": "epsilon", "conv": "epsilon", "linear": "epsilon"},
}

_LINEAR = {F.conv1d: "conv", F.conv2d: "conv", F.conv3d: "conv", F.linear: "linear"}
_POOLS = {F.avg_pool2d, F.adaptive_avg_pool2d, F.avg_pool1d, F.adaptive_avg_pool1d, torch.mean, torch.Tensor.mean}
_ADDS = {torch.add: False, torch.Tensor.add: False, torch.Tensor.add_: True}  # -> in place?


class _Linear(torch.autograd.Function):
    """Forward: ``make()``, the layer's real output z; backward: the rule's relevance for x.
    Each rule runs its terms' forwards on the saved input and one backward call."""

    @staticmethod
    def forward(ctx, x, make, op, w, b, rule, kw):
        z = make()
        # the γ-rule needs the sign of z (z itself may be overwritten in place by an activation)
        ctx.save_for_backward(x, z.sign() if rule is rule_gamma else None)
        ctx.args = (op, w, b, rule, kw)
        return z

    @staticmethod
    def backward(ctx, r):
        x, sign = ctx.saved_tensors
        op, w, b, rule, kw = ctx.args
        return rule(op, x.detach(), w, b, r, sign, **kw), None, None, None, None, None, None


class _Pass(torch.autograd.Function):
    """An element-wise activation whose backward passes relevance unchanged."""

    @staticmethod
    def forward(ctx, z, fn, inplace):
        y = fn(z)
        if inplace:
            ctx.mark_dirty(z)
            return z.copy_(y)
        return y

    @staticmethod
    def backward(ctx, r):
        return r, None, None


class _Sum(torch.autograd.Function):
    """a + b (``a += b`` when ``inplace``) with relevance split in proportion: R_a = a / (a + b) · R."""

    @staticmethod
    def forward(ctx, a, b, eps, inplace):
        ctx.eps = eps
        if inplace:
            ctx.save_for_backward(a.clone(), b.clone())
            ctx.mark_dirty(a)
            return a.add_(b)
        ctx.save_for_backward(a, b)
        return a + b

    @staticmethod
    def backward(ctx, r):
        a, b = ctx.saved_tensors
        s = r / stabilize(a + b, ctx.eps)
        return a * s, b * s, None, None


class _Norm(torch.autograd.Function):
    """A parameter-free linear op (average pooling): R_in = x ⊙ Jᵀ (R / op(x))."""

    @staticmethod
    def forward(ctx, x, op, eps):
        ctx.save_for_backward(x)
        ctx.op, ctx.eps = op, eps
        return op(x)

    @staticmethod
    def backward(ctx, r):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            t = x.detach().requires_grad_(True)
            out = ctx.op(t)
            (g,) = torch.autograd.grad(out, t, r / stabilize(out.detach(), ctx.eps))
        return x * g, None, None


def _split(args, kwargs, n):
    """The first ``n`` arguments (positional or named) and a function of the rest."""
    names = ["input", "weight", "bias"][:n]
    head = list(args[:n]) + [kwargs.get(k) for k in names[len(args):]]
    rest, kw = args[n:], {k: v for k, v in kwargs.items() if k not in names}
    return head, rest, kw


class LRPMode(TorchFunctionMode):
    """Relevance backward for one forward pass of ``leaf`` (see the module docstring).

    Args:
        composite: a :data:`COMPOSITES` name. ``epsilon``: ε of the ε-rule. ``gamma``: γ of the γ-rule.
        leaf: the network's input tensor; ``low``, ``high``: its bounds (broadcastable), for z^B.
    """

    def __init__(self, composite: str, leaf: torch.Tensor, low, high, epsilon: float = 1e-6,
                 gamma: float = 0.25, stabilizer: float = 1e-6):
        super().__init__()
        self.map = COMPOSITES[composite]
        self.kw = {"eps": epsilon, "gamma": gamma, "stabilizer": stabilizer}
        self.stabilizer = stabilizer
        self.bounds = {id(leaf): (leaf, low + torch.zeros_like(leaf), high + torch.zeros_like(leaf))}
        self.pending: dict = {}
        self.first_rule = None
        self.counts = {"layers": 0, "merged_batch_norms": 0, "sums": 0, "pools": 0, "activations": 0}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not torch.is_grad_enabled():
            return func(*args, **kwargs)
        if func in _LINEAR:
            return self._linear(func, args, kwargs)
        if func is F.batch_norm:
            return self._batch_norm(func, args, kwargs)
        if func is F.pad and id(args[0]) in self.bounds and self.bounds[id(args[0])][0] is args[0]:
            out = func(*args, **kwargs)
            _, low, high = self.bounds[id(args[0])]
            self.bounds[id(out)] = (out, func(low, *args[1:], **kwargs), func(high, *args[1:], **kwargs))
            return out
        parsed = parse_elementwise(func, args, kwargs)
        if parsed is not None:
            self.counts["activations"] += 1
            return _Pass.apply(*parsed)
        if func in _ADDS and len(args) == 2 and not kwargs and _both_grad(*args):
            self.counts["sums"] += 1
            return _Sum.apply(args[0], args[1], self.stabilizer, _ADDS[func])
        if func in _POOLS and isinstance(args[0], torch.Tensor) and args[0].requires_grad:
            self.counts["pools"] += 1
            return _Norm.apply(args[0], lambda t: func(t, *args[1:], **kwargs), self.stabilizer)
        return func(*args, **kwargs)

    def _linear(self, func, args, kwargs):
        (x, w, b), rest, kw = _split(args, kwargs, 3)
        if not isinstance(x, torch.Tensor) or not x.requires_grad:
            return func(*args, **kwargs)
        first = self.counts["layers"] == 0
        self.counts["layers"] += 1
        kind = "first" if first else _LINEAR[func]
        rule_kw = dict(self.kw)
        known = self.bounds.get(id(x))
        if kind == "first" and self.map["first"] == "zbox":
            if known is None or known[0] is not x:
                kind = "conv" if _LINEAR[func] == "conv" else "linear"  # bounds unknown: the layer's own rule
            else:
                rule_kw.update(low=known[1], high=known[2])
        rule = RULES[self.map[kind]]
        if first:
            self.first_rule = self.map[kind]

        def op(t, weight, bias):
            return func(t, weight, bias, *rest, **kw)

        out = _Linear.apply(x, lambda: op(x.detach(), w, b), op, w, b, rule, rule_kw)
        self.pending[id(out)] = (out, x, op, w, b, rule, rule_kw)
        return out

    def _batch_norm(self, func, args, kwargs):
        (x, mean, var), _, kw = _split_bn(args, kwargs)
        entry = self.pending.get(id(x))
        if entry is None or entry[0] is not x or kw["training"]:
            return func(*args, **kwargs)
        _, inp, op, w, b, rule, rule_kw = entry
        scale = torch.rsqrt(var + kw["eps"]) * (kw["weight"] if kw["weight"] is not None else 1.0)
        shift = (kw["bias"] if kw["bias"] is not None else 0.0) - mean * scale
        view = (-1,) + (1,) * (w.dim() - 1)
        w2 = w * scale.view(view)
        b2 = (b * scale if b is not None else 0.0) + shift
        self.counts["merged_batch_norms"] += 1
        value = x.detach()  # the convolution's output; the batch norm's own output is kept exactly
        out = _Linear.apply(inp, lambda: func(value, *args[1:], **kwargs), op, w2, b2, rule, rule_kw)
        self.pending[id(out)] = (out, inp, op, w2, b2, rule, rule_kw)
        return out


def _split_bn(args, kwargs):
    names = ["input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"]
    defaults = {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5}
    vals = dict(defaults, **dict(zip(names, args)), **kwargs)
    return (vals["input"], vals["running_mean"], vals["running_var"]), args[3:], vals


def _both_grad(a, b) -> bool:
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.requires_grad and b.requires_grad
            and a.shape == b.shape)


@register_method("lrp", label="LRP", family="lrp", cost="1 forward + 1 backward whose layers run 1-4 forward+backward terms",
                 aliases=("layerwise_relevance", "relevance"), lazy_target=True)
def lrp(model: Model, x: torch.Tensor, targets: torch.Tensor, composite: str = "epsilon_gamma_box",
        epsilon: float = 1e-6, gamma: float = 0.25) -> Attribution:
    """LRP relevance per pixel, summed over colour (signed; Σ ≈ the target score).

    ``composite``: ``epsilon_gamma_box`` (z^B first, γ for convolutions, ε for dense layers),
    ``epsilon_plus`` (z⁺ for convolutions) or ``epsilon`` (ε everywhere; ``epsilon=0``: LRP-0).
    ``info``: ``score`` and ``relevance_sum`` per image, and how many layers, merged batch norms,
    residual sums, poolings and activations the rules covered.
    """
    if composite not in COMPOSITES:
        raise SynthvizError(f"unknown LRP composite '{composite}'{did_you_mean(composite, COMPOSITES)}; "
                            f"use {', '.join(COMPOSITES)}")
    leaf = model.normalize(x).detach().requires_grad_(True)
    low, high = model.normalize(torch.zeros_like(x[:1])), model.normalize(torch.ones_like(x[:1]))
    with torch.enable_grad(), LRPMode(composite, leaf, low, high, epsilon=epsilon, gamma=gamma) as mode:
        scores = target_scores(model.net(leaf), targets)
    if mode.counts["layers"] == 0:
        raise SynthvizError(f"{model.name} has no convolution or linear layer for LRP rules; use another method")
    (raw,) = torch.autograd.grad(scores, leaf, scores.detach())
    raw = raw.detach()
    info = {"composite": composite, "score": scores.detach().tolist(), "relevance_sum": raw.flatten(1).sum(1).tolist(),
            "first_rule": mode.first_rule, **mode.counts}
    return Attribution(REDUCTIONS["sum"](raw), raw, info=info, reduction="sum")
