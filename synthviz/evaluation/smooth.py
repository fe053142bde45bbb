"""Smooth stand-ins for ReLU-type activations, for attacks that need second derivatives.

A ReLU network is piecewise linear: its input gradient has zero derivative almost everywhere, so
an attack on a gradient map has nothing to follow. Inside :class:`SmoothActivations` every ReLU
call becomes softplus_β(x) = log(1 + e^{βx}) / β and every ReLU6 call softplus_β(x) − softplus_β(x − 6)
(Ghorbani et al. 2019), for modules (``nn.ReLU``, ``nn.ReLU6``, in place or not), ``F.relu``,
``F.relu6``, ``F.hardtanh(x, 0, t)`` and the tensor methods; hard sigmoid and hard swish
(MobileNetV3, whose second derivatives autograd lacks) become softplus_relu6(x + 3) / 6 and x times
it, and torchvision's RoIAlign (two-stage detectors) gets a twice-differentiable backward. It is a torch-function mode: the model
is never modified, and nothing needs restoring after an error.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

BETA = 30.0


def _relu(input, inplace=False):
    return input, 0.0, None


def _relu_plain(input):
    return input, 0.0, None


def _relu6(input, inplace=False):
    return input, 0.0, 6.0


def _relu6_plain(input):
    return input, 0.0, 6.0


def _hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return input, min_val, max_val


# every way a ReLU-type activation reaches the tensor library -> (x, low, high)
_CALLS = {
    F.relu: _relu, torch.relu: _relu_plain, torch.Tensor.relu: _relu_plain, torch.relu_: _relu_plain,
    torch.Tensor.relu_: _relu_plain, F.relu6: _relu6, torch._C._nn.relu6: _relu6_plain,
    torch._C._nn.relu6_: _relu6_plain, F.hardtanh: _hardtanh, torch._C._nn.hardtanh: _hardtanh,
    torch._C._nn.hardtanh_: _hardtanh,
}


def softplus_relu6(x: torch.Tensor, beta: float = BETA, top: float = 6.0) -> torch.Tensor:
    """softplus_β(x) − softplus_β(x − top): a smooth clamp to [0, top]."""
    return F.softplus(x, beta) - F.softplus(x - top, beta)


class _RoIAlign(torch.autograd.Function):
    """torchvision's RoIAlign (linear in its features: out = R x), with a backward that is itself
    differentiable (x -> Rᵀ g, whose own backward is R again): torchvision's has no second derivative."""

    @staticmethod
    def forward(ctx, features, rois, scale, height, width, ratio, aligned):
        ctx.save_for_backward(rois)
        ctx.args, ctx.shape = (scale, height, width, ratio, aligned), features.shape
        return torch.ops.torchvision.roi_align(features, rois, scale, height, width, ratio, aligned)

    @staticmethod
    def backward(ctx, grad):
        (rois,) = ctx.saved_tensors
        return (_RoIAlignBack.apply(grad, rois, ctx.args, ctx.shape),) + (None,) * 6


class _RoIAlignBack(torch.autograd.Function):
    """Rᵀ g: RoIAlign's backward as a function of the output gradient ``g``; its own backward is R."""

    @staticmethod
    def forward(ctx, grad, rois, args, shape):
        ctx.save_for_backward(rois)
        ctx.args = args
        scale, height, width, ratio, aligned = args
        return torch.ops.torchvision._roi_align_backward(grad.contiguous(), rois, scale, height, width, *shape,
                                                         ratio, aligned)

    @staticmethod
    def backward(ctx, gg):
        (rois,) = ctx.saved_tensors
        return _RoIAlign.apply(gg, rois, *ctx.args), None, None, None


def _roi_align_calls() -> tuple:
    ops = getattr(getattr(torch.ops, "torchvision", None), "roi_align", None)
    return () if ops is None else (ops, ops.default)


class SmoothActivations(TorchFunctionMode):
    """Inside this context ReLU -> softplus_β and ReLU6 -> softplus_β(x) − softplus_β(x − 6).

    ``calls`` counts the activations replaced (0 after a forward pass: the model has none)."""

    def __init__(self, beta: float = BETA):
        super().__init__()
        self.beta = float(beta)
        self.calls = 0
        self._roi_align = _roi_align_calls() if "torchvision" in sys.modules else ()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._roi_align and args[0].requires_grad:  # two-stage detectors' RoIAlign: twice differentiable
            return _RoIAlign.apply(*args, *kwargs.values())
        if func in (F.hardsigmoid, F.hardswish) and isinstance(args[0], torch.Tensor):  # MobileNetV3's
            self.calls += 1
            gate = softplus_relu6(args[0] + 3.0, self.beta) / 6.0
            return gate if func is F.hardsigmoid else args[0] * gate
        parse = _CALLS.get(func)
        if parse is not None:
            x, lo, hi = parse(*args, **kwargs)
            if isinstance(x, torch.Tensor) and lo == 0:
                self.calls += 1
                return F.softplus(x, self.beta) if hi is None else softplus_relu6(x, self.beta, hi)
        return func(*args, **kwargs)
