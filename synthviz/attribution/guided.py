"""Modified-backward methods: guided backpropagation (Springenberg 2015) and DeconvNet (Zeiler &
Fergus 2014). A torch-function mode changes the backward of every ReLU-type call (``nn.ReLU``,
in place or not, ``F.relu``, ``torch.relu_``, ``nn.ReLU6``, ``F.hardtanh(x, 0, t)``); the model
itself is never touched, so nothing needs restoring after an error. Once a first forward has shown
that a network calls these only inside activation modules, DeconvNet's mode is entered only there,
and guided backprop needs no mode at all: a gradient hook on each such module's output
(:mod:`synthviz.attribution.scoped`; the hooks go when the call ends, error or not)."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..models import Model
from .core import REDUCTIONS, Attribution, input_gradient
from .registry import register_method


def _clamp(ctx, x: torch.Tensor, lo, hi, inplace: bool) -> torch.Tensor:
    """The forward both modified clamps share: the ReLU/ReLU6/hardtanh itself, in place if asked."""
    if inplace:
        ctx.mark_dirty(x)
        return x.clamp_(lo, hi)
    return x.clamp(lo, hi)


class _GuidedClamp(torch.autograd.Function):
    """clamp(x, lo, hi) whose backward passes only positive gradient where lo < x < hi."""

    @staticmethod
    def forward(ctx, x, lo, hi, inplace):
        open_ = x > lo if hi is None else (x > lo) & (x < hi)
        ctx.save_for_backward(open_)  # a mask, not x: safe when x is then overwritten in place
        return _clamp(ctx, x, lo, hi, inplace)

    @staticmethod
    def backward(ctx, grad):
        (open_,) = ctx.saved_tensors
        return grad.clamp(min=0) * open_, None, None, None


class _DeconvClamp(torch.autograd.Function):
    """clamp(x, lo, hi) whose backward is ReLU(grad), whatever the forward sign (DeconvNet)."""

    @staticmethod
    def forward(ctx, x, lo, hi, inplace):
        return _clamp(ctx, x, lo, hi, inplace)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0), None, None, None


def _relu_args(input, inplace=False):
    return input, 0.0, None, inplace


def _relu_inplace_args(input):
    return input, 0.0, None, True


def _relu_plain_args(input):
    return input, 0.0, None, False


def _relu6_args(input, inplace=False):
    return input, 0.0, 6.0, inplace


def _relu6_plain_args(input):
    return input, 0.0, 6.0, False


def _relu6_inplace_args(input):
    return input, 0.0, 6.0, True


def _hardtanh_args(input, min_val=-1.0, max_val=1.0, inplace=False):
    return input, min_val, max_val, inplace


def _hardtanh_inplace_args(input, min_val=-1.0, max_val=1.0):
    return input, min_val, max_val, True


# Every way a ReLU-type activation reaches the tensor library: modules (nn.ReLU/ReLU6 call F.relu /
# F.hardtanh), functional calls, torch.* and Tensor methods, in place or not.
_ACTIVATIONS: dict = {
    F.relu: _relu_args, torch.relu: _relu_plain_args, torch.Tensor.relu: _relu_plain_args,
    torch.relu_: _relu_inplace_args, torch.Tensor.relu_: _relu_inplace_args,
    F.relu6: _relu6_args, torch._C._nn.relu6: _relu6_plain_args, torch._C._nn.relu6_: _relu6_inplace_args,
    F.hardtanh: _hardtanh_args, torch._C._nn.hardtanh: _hardtanh_args,
    torch._C._nn.hardtanh_: _hardtanh_inplace_args,
}


class GuidedReLU(TorchFunctionMode):
    """Inside this context, every ReLU-type call back-propagates only positive gradient where its
    input is in the open range (guided backprop); ``calls`` counts the activations changed, ``seen``
    the ReLU-type calls met."""

    rule = _GuidedClamp

    def __init__(self):
        super().__init__()
        self.calls = self.seen = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        parse = _ACTIVATIONS.get(func)
        self.seen += parse is not None
        if parse is not None and torch.is_grad_enabled():
            x, lo, hi, inplace = parse(*args, **kwargs)
            if isinstance(x, torch.Tensor) and x.requires_grad and lo == 0:
                self.calls += 1
                return self.rule.apply(x, lo, hi, inplace)
        return func(*args, **kwargs)


    @staticmethod
    def changes(module: nn.Module) -> bool:
        """Whether the mode changes the calls of this activation module (ReLU-type, lower bound 0)."""
        return isinstance(module, nn.ReLU) or (isinstance(module, nn.Hardtanh) and module.min_val == 0)

    @staticmethod
    def output_grad(grad: torch.Tensor) -> torch.Tensor:
        """The rule as a hook on the gradient at a ReLU-type output: the activation's own backward
        then keeps it only where the input was in the open range (what :class:`_GuidedClamp` does)."""
        return grad.clamp(min=0)


class DeconvReLU(GuidedReLU):
    """Inside this context, every ReLU-type call back-propagates ReLU(gradient) (DeconvNet)."""

    rule = _DeconvClamp
    output_grad = None  # it ignores the forward sign, which the activation's own backward keeps


def modified_gradient(model: Model, x: torch.Tensor, targets: torch.Tensor, mode_type: type,
                      what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """∂score/∂x with every ReLU-type backward replaced by ``mode_type``'s rule; warns when the
    model has no such activation (the answer is then the plain gradient)."""
    mode = mode_type()
    grad, scores = input_gradient(model, x, targets, mode=mode)
    if mode.calls == 0:
        warnings.warn(f"{model.name} has no ReLU/ReLU6 calls: {what} equals the plain gradient", stacklevel=3)
    return grad, scores


@register_method("guided_backprop", label="guided backprop", family="guided", cost="1 forward + 1 backward",
                 aliases=("guided", "gbp"), lazy_target=True)
def guided_backprop(model: Model, x: torch.Tensor, targets: torch.Tensor) -> Attribution:
    """Guided backpropagation: max over colour of |guided gradient|; raw = the guided gradient."""
    grad, scores = modified_gradient(model, x, targets, GuidedReLU, "guided backprop")
    return Attribution(REDUCTIONS["max"](grad), grad, reduction="max", scores=scores)


@register_method("deconvnet", label="DeconvNet", family="guided", cost="1 forward + 1 backward",
                 aliases=("deconv", "deconvolution"), lazy_target=True)
def deconvnet(model: Model, x: torch.Tensor, targets: torch.Tensor) -> Attribution:
    """DeconvNet (Zeiler & Fergus 2014): every ReLU passes max(gradient, 0) backwards, ignoring the
    forward sign; max over colour of |·|; raw = the signed result."""
    grad, scores = modified_gradient(model, x, targets, DeconvReLU, "DeconvNet")
    return Attribution(REDUCTIONS["max"](grad), grad, reduction="max", scores=scores)
