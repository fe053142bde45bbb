"""DeepLIFT with the Rescale rule (Shrikumar et al., ICML 2017), without touching the model.

A :class:`RescaleMode` (a ``TorchFunctionMode``, like guided backprop's) catches every element-wise
activation call — ``nn.ReLU`` / ``ReLU6`` / ``SiLU`` / ``Hardswish`` / ``GELU`` / ``ELU`` / ``LeakyReLU`` /
``Softplus`` / ``Sigmoid`` / ``Tanh`` modules, their functional, ``torch.*`` and ``Tensor`` forms, in
place or not (entered only inside the activation modules once a first forward has shown that the
network calls activations nowhere else: :mod:`synthviz.attribution.scoped`). A first forward of the reference x′ (without gradient; one image when x′ is shared by
the batch) records each call's input z′ in call order; the forward of x then gives its k-th call
the backward multiplier

    m = (f(z) − f(z′)) / (z − z′)      (f′ at the midpoint where |z − z′| < 1e-6),

so a module used twice is simply two calls, and in-place activations work (z′ is copied first).
Linear operations (convolutions, batch norm in eval mode, average pooling, padding, residual sums)
keep their gradient, which is their exact multiplier. The attribution is (x − x′) × the multiplier
at the input and sums to f(x) − f(x′) (summation-to-delta). Cost: one forward of x′, one forward
and one backward of x (Captum runs forward and backward on [x; x′], twice the rows). The model
must take the same path for x and x′ (no data-dependent control flow; else a one-line error).

Not covered by the Rescale rule (they keep their plain gradient, so summation-to-delta is then
approximate and ``info["relative_gap"]`` shows by how much): max pooling (the gradient of the
input's maximum), products of two activations (squeeze-and-excitation gates, ``x * sigmoid(x)``
written out), and activations written as a custom ``autograd.Function``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import SynthvizError
from ..models import Model
from .core import REDUCTIONS, Attribution, make_baseline, target_scores
from .registry import register_method
from .scoped import activation_mode

_nn = torch._C._nn


class _Clamp:
    """clamp(z, lo, hi); its derivative is 1 inside the open range, else 0 (see fill_nan)."""

    def __init__(self, lo, hi=None):
        self.lo, self.hi = lo, hi

    def __call__(self, z):
        return torch.clamp(z, self.lo, self.hi)

    def fill_nan(self, m: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The secants ``m`` (in [0, 1], NaN where Δz = 0) with each NaN replaced by f′ read off
        the output y = f(z) (1 strictly inside the range, where y = z; 0 on a bound), in place.
        Float arithmetic only: a mask and a where cost several times as much on the CPU."""
        m = m.nan_to_num_(nan=-1.0)  # -1 marks Δz = 0
        inside = y.sign() if self.lo == 0 else (y - self.lo).sign_()
        if self.hi is not None:
            inside.mul_((self.hi - y).sign_())
        return m.neg().clamp_(min=0).mul_(inside).add_(m.clamp_(min=0))


_clamp = _Clamp
_RELU = _Clamp(0.0)


def _same(fn: Callable, inplace: bool = False) -> Callable:
    """A parser for ``fn(input, inplace=...)``-style calls: -> (input, pure function, in place?)."""
    def parse(input, *rest, **kw):
        ip = kw.pop("inplace", rest[-1] if rest and isinstance(rest[-1], bool) else inplace)
        rest = tuple(r for r in rest if not isinstance(r, bool))
        return input, (lambda t: fn(t, *rest, **kw)), bool(ip)
    return parse


def _hardtanh(inplace: bool = False) -> Callable:
    def parse(input, min_val=-1.0, max_val=1.0, ip=inplace, inplace=None):
        return input, _clamp(min_val, max_val), bool(ip if inplace is None else inplace)
    return parse


def _relu6(inplace: bool = False) -> Callable:
    def parse(input, ip=inplace, inplace=None):
        return input, _clamp(0.0, 6.0), bool(ip if inplace is None else inplace)
    return parse


# Every element-wise activation call -> a parser returning (input, the out-of-place function, in place?).
ELEMENTWISE: dict = {
    F.relu: _same(_RELU), torch.relu: _same(_RELU), torch.Tensor.relu: _same(_RELU),
    torch.relu_: _same(_RELU, True), torch.Tensor.relu_: _same(_RELU, True),
    F.relu6: _relu6(), _nn.relu6: _relu6(), _nn.relu6_: _relu6(True),
    F.hardtanh: _hardtanh(), _nn.hardtanh: _hardtanh(), _nn.hardtanh_: _hardtanh(True),
    F.silu: _same(F.silu), F.hardswish: _same(F.hardswish), F.hardsigmoid: _same(F.hardsigmoid),
    F.gelu: _same(F.gelu), F.elu: _same(F.elu), F.leaky_relu: _same(F.leaky_relu),
    F.softplus: _same(F.softplus), F.mish: _same(F.mish),
    torch.sigmoid: _same(torch.sigmoid), torch.Tensor.sigmoid: _same(torch.sigmoid),
    torch.tanh: _same(torch.tanh), torch.Tensor.tanh: _same(torch.tanh),
}


def parse_elementwise(func, args, kwargs, need_grad: bool = True):
    """(input, pure fn, in place) when ``func(*args, **kwargs)`` is an element-wise activation call
    (on a tensor that needs a gradient, unless ``need_grad`` is False), else None."""
    parse = ELEMENTWISE.get(func)
    if parse is None or (need_grad and not torch.is_grad_enabled()):
        return None
    x, fn, inplace = parse(*args, **kwargs)
    if not isinstance(x, torch.Tensor) or (need_grad and not x.requires_grad):
        return None
    return x, fn, inplace



def derivative(fn: Callable, z: torch.Tensor) -> torch.Tensor:
    """f′(z) element-wise by autograd (``fn`` acts element by element; clamps use _Clamp.fill_nan)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        (d,) = torch.autograd.grad(fn(z).sum(), z)
    return d


class _Rescale(torch.autograd.Function):
    """y = f(z); backward multiplies by (f(z) − f(z′)) / (z − z′), f′ at the midpoint where |z − z′| < eps."""

    @staticmethod
    def forward(ctx, z, ref, ref_out, fn, inplace, eps):
        dz = z - ref
        if inplace:  # z itself becomes f(z) (after Δz is taken): no copy
            ctx.mark_dirty(z)
            y = z.copy_(fn(z)) if not isinstance(fn, _Clamp) else z.clamp_(fn.lo, fn.hi)
        else:
            y = fn(z)
        m = (y - ref_out).div_(dz)
        # f′ at the midpoint where Δz ≈ 0. A clamp's secant is exact down to Δz = 0 (inside the
        # range Δy and Δz are the same float), so only Δz = 0 needs it there: 0/0, a NaN, common
        # (a unit whose receptive field is clamped alike for z and z′): see _Clamp.fill_nan.
        if isinstance(fn, _Clamp):
            m = fn.fill_nan(m, y)
        elif (bad := dz.abs() < eps).any():
            idx = bad.nonzero(as_tuple=True)
            # the midpoint z′ + Δz/2 (z itself may be overwritten by now); ref: B rows or 1 shared
            m[idx] = derivative(fn, ref.expand_as(dz)[idx] + dz[idx] / 2)
        ctx.save_for_backward(m)
        return y

    @staticmethod
    def backward(ctx, grad):
        (m,) = ctx.saved_tensors
        return grad * m, None, None, None, None, None


class RescaleMode(TorchFunctionMode):
    """Two passes in one context: first the reference x′ (``recording``, no gradient), which keeps
    every element-wise activation's input z′ in call order; then the input x, whose k-th activation
    call back-propagates the Rescale multiplier against the k-th z′. A module called twice is two
    calls; in-place activations work because z′ is copied before the call. ``calls``: activations
    rescaled, ``seen`` activation calls met (both passes)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps, self.calls, self.seen, self.refs, self.recording, self.index = eps, 0, 0, [], True, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        parsed = parse_elementwise(func, args, kwargs, need_grad=False)
        if parsed is None:
            return func(*args, **kwargs)
        self.seen += 1
        z, fn, inplace = parsed
        if self.recording:  # keep z′ and f(z′) (copies where the call works in place)
            ref = z.detach().clone() if inplace else z.detach()
            out = func(*args, **kwargs)
            self.refs.append((ref, out.clone() if inplace else out))
            return out
        if self.index >= len(self.refs):
            raise SynthvizError(_PATH)
        ref, ref_out = self.refs[self.index]
        self.index += 1
        if ref.shape[1:] != z.shape[1:] or len(ref) not in (1, len(z)):
            raise SynthvizError(_PATH)
        if not (torch.is_grad_enabled() and z.requires_grad):
            return func(*args, **kwargs)
        self.calls += 1
        return _Rescale.apply(z, ref, ref_out, fn, inplace, self.eps)


_PATH = ("the model's activations differ between the input and the reference (data-dependent control "
         "flow); DeepLIFT needs the same path for both")


def deeplift_gradients(model: Model, x: torch.Tensor, base: torch.Tensor, targets: torch.Tensor,
                       eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, RescaleMode]:
    """Multipliers at the input for x (B, 3, H, W) against ``base`` (like x, or (1, 3, H, W): one
    reference for all) -> (mult (B, 3, H, W), f(x) (B,), f(x′) (B,), the mode with its count).
    Costs one forward of the reference, one forward and one backward of x."""
    x = x.detach().requires_grad_(True)
    net = model.runner(x)
    with activation_mode(RescaleMode(eps), net) as mode:
        with torch.no_grad():
            ref_out = model(base, net=net)
            if not isinstance(ref_out, torch.Tensor):  # a detector's list of dicts: no reference path
                raise SynthvizError(f"DeepLIFT compares the output on the input and on a reference, which needs "
                                    f"one output tensor (a classifier), not {type(ref_out).__name__}; use "
                                    "integrated_gradients or the CAM family on this model")
            ref_scores = target_scores(ref_out.expand(len(x), -1), targets)
        mode.recording = False
        with torch.enable_grad():
            scores = target_scores(model(x, net=net), targets)
    if mode.index != len(mode.refs):
        raise SynthvizError(_PATH)
    (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad, scores.detach(), ref_scores, mode


@register_method("deeplift", label="DeepLIFT", family="deeplift", cost="2 forwards + 1 backward",
                 aliases=("deep_lift", "rescale"))
def deeplift(model: Model, x: torch.Tensor, targets: torch.Tensor, baseline: str | torch.Tensor = "black",
             batch_size: int = 16) -> Attribution:
    """DeepLIFT (Rescale): (x − x′) × the Rescale multipliers, summed over colour (signed).

    ``baseline``: black, white, blurred, or an image (path / tensor), as for integrated gradients.
    ``info``: ``delta`` f(x) − f(x′), ``completeness_gap`` Σ attributions − delta and
    ``relative_gap`` |gap| / |delta| per image, ``rescaled`` activation calls per forward.
    """
    if int(batch_size) < 1:
        raise SynthvizError(f"batch_size must be at least 1, not {batch_size}")
    base = make_baseline(baseline, x)
    raw, deltas, calls = [], [], 0
    for s in range(0, len(x), int(batch_size)):
        xs, bs = x[s:s + batch_size], base[s:s + batch_size]
        shared = bs[:1] if base.stride(0) == 0 or len(bs) == 1 else bs  # one reference forward for all
        mult, fx, fb, mode = deeplift_gradients(model, xs, shared, targets[s:s + batch_size])
        raw.append((xs - bs) * mult)
        deltas.append(fx - fb)
        calls = mode.calls
    raw, delta = torch.cat(raw).detach(), torch.cat(deltas)
    gap = raw.flatten(1).sum(1) - delta
    info = {"delta": delta.tolist(), "completeness_gap": gap.tolist(),
            "relative_gap": (gap.abs() / delta.abs().clamp(min=1e-12)).tolist(), "rescaled": calls,
            "baseline": baseline if isinstance(baseline, str) else "image"}
    return Attribution(REDUCTIONS["sum"](raw), raw, info=info, reduction="sum")
