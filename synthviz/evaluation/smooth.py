"""Smooth stand-ins for ReLU-type activations, for attacks that need second derivatives.

A ReLU network is piecewise linear: its input gradient has zero derivative almost everywhere, so
an attack on a gradient map has nothing to follow. Inside :class:`SmoothActivations` every ReLU
call becomes softplus_β(x) = log(1 + e^{βx}) / β and every ReLU6 call softplus_β(x) − softplus_β(x − 6)
(Ghorbani et al. 2019), for modules (``nn.ReLU``, ``nn.ReLU6``, in place or not), ``F.relu``,
``F.relu6``, ``F.hardtanh(x, 0, t)`` and the tensor methods. It is a torch-function mode: the model
is never modified, and nothing needs restoring after an error.
"""

from __future__ import annotations

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


class SmoothActivations(TorchFunctionMode):
    """Inside this context ReLU -> softplus_β and ReLU6 -> softplus_β(x) − softplus_β(x − 6).

    ``calls`` counts the activations replaced (0 after a forward pass: the model has none)."""

    def __init__(self, beta: float = BETA):
        super().__init__()
        self.beta = float(beta)
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        parse = _CALLS.get(func)
        if parse is not None:
            x, lo, hi = parse(*args, **kwargs)
            if isinstance(x, torch.Tensor) and lo == 0:
                self.calls += 1
                return F.softplus(x, self.beta) if hi is None else softplus_relu6(x, self.beta, hi)
        return func(*args, **kwargs)
