"""Input invariance (Kindermans et al. 2017): a map should not change when the input is shifted by a
constant that the network itself compensates.

:func:`shifted_model` makes a copy M' of the model with M'(x + c) = M(x) for every image x: the
first convolution pads with the shifted value instead of zero (so the border sees what it saw
before), and the constant its weights add, W·c, is folded into the running mean of the batch norm
that follows (or subtracted from the convolution's bias when no batch norm follows). Both models
compute the same function up to float rounding, so a method that explains the *function* gives the
same map on (M, x) and (M', x + c). Gradient and Grad-CAM pass; gradient × input and integrated
gradients with a black (zero) baseline do not: they depend on where zero is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SynthvizError
from ..layers import Tap
from ..models import Model
from ._maps import relevance, resolve_targets, spearman

SHIFT = -1.0      # pixel units: [0, 1] becomes [-1, 0] (Kindermans' MNIST shift)
TOLERANCE = 0.05  # relative change of the map above this: not input invariant


class ValuePad(nn.Module):
    """Pads (B, C, H, W) with a per-channel ``value`` (1, C, 1, 1) instead of zero: ``pad(x − v) + v``."""

    def __init__(self, pads: tuple[int, int, int, int], value: torch.Tensor):
        super().__init__()
        self.pads = tuple(int(p) for p in pads)
        self.register_buffer("value", value.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x - self.value, self.pads) + self.value


class PaddedConv(nn.Module):
    """A convolution whose zero padding was taken out and is done by ``pad`` (a :class:`ValuePad`)."""

    def __init__(self, pad: nn.Module, conv: nn.Conv2d):
        super().__init__()
        self.pad, self.conv = pad, conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


def stem(model: Model, images: torch.Tensor) -> tuple[str, str | None]:
    """The first convolution applied to the image and the batch norm fed by its output (or None).

    The outputs of every convolution and batch norm are recorded in forward order (``Tap``); the
    batch norm is the first one after the stem whose output is its own function of the stem's output."""
    named = {n: m for n, m in model.net.named_modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))}
    with torch.no_grad(), Tap(model, list(named), truncate=False, strict=False) as tap:
        acts = tap(images[:1].to(model.device))
    order = list(acts)  # the order the layers ran in
    convs = [n for n in order if isinstance(named[n], nn.Conv2d)]
    if not convs:
        raise SynthvizError(f"{model.name} has no convolution to compensate the input shift in")
    conv = convs[0]
    out = acts[conv]
    with torch.no_grad():
        for name in order[order.index(conv) + 1:]:
            bn = named[name]
            if isinstance(bn, nn.BatchNorm2d) and bn.num_features == out.shape[1] and acts[name].shape == out.shape:
                same = F.batch_norm(out, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
                return conv, name if torch.allclose(same, acts[name], atol=1e-5) else None
    return conv, None


def _set(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def shifted_model(model: Model, shift: float = SHIFT, images: torch.Tensor | None = None) -> Model:
    """A deep copy M' of ``model`` with M'(x + shift) = M(x): the stem pads with the shifted value
    and W·shift is folded into the following batch norm's running mean (or the stem's bias).
    ``images``: a probe to find the stem (default a grey 64-px image)."""
    work = model.copy()
    dtype = next(work.net.parameters()).dtype
    probe = images[:1] if images is not None else torch.full((1, 3, max(64, work.min_size), max(64, work.min_size)), 0.5)
    probe = probe.to(work.device, dtype)
    conv_name, bn_name = stem(work, probe)
    conv = work.net.get_submodule(conv_name)
    delta = (torch.as_tensor(shift, dtype=torch.float64) / work.std.double()).view(1, -1, 1, 1).to(conv.weight)
    static = getattr(conv, "static_padding", None)
    if isinstance(static, (nn.ZeroPad2d, nn.ConstantPad2d)) and float(getattr(static, "value", 0.0)) == 0.0:
        conv.static_padding = ValuePad(static.padding, delta)  # EfficientNet's "same" padding module
    elif isinstance(static, nn.Identity) or (static is None and not any(conv.padding)):
        pass
    elif static is None and isinstance(conv.padding, tuple) and conv.padding_mode == "zeros":
        ph, pw = conv.padding
        conv.padding = (0, 0)
        _set(work.net, conv_name, PaddedConv(ValuePad((pw, pw, ph, ph), delta), conv))
    else:
        raise SynthvizError(f"cannot compensate an input shift in {model.name}'s first convolution "
                            f"'{conv_name}' (padding {conv.padding}, mode {conv.padding_mode})")
    kh, kw = conv.kernel_size
    const = delta.expand(1, -1, (kh - 1) * conv.dilation[0] + 1, (kw - 1) * conv.dilation[1] + 1)
    added = F.conv2d(const, conv.weight, None, 1, 0, conv.dilation, conv.groups).flatten()  # W·shift per channel
    with torch.no_grad():
        if bn_name is not None and work.net.get_submodule(bn_name).running_mean is not None:
            work.net.get_submodule(bn_name).running_mean += added
        elif conv.bias is not None:
            conv.bias -= added
        else:
            raise SynthvizError(f"{model.name}'s first convolution has no bias and no batch norm after it: "
                                "nowhere to compensate an input shift")
    return work


def input_invariance(model: Model, images: torch.Tensor, method: str, target=None, shift: float = SHIFT,
                     tolerance: float = TOLERANCE, **options) -> dict:
    """The map of ``method`` on (model, x) against its map on (shifted model, x + shift).

    Returns ``{"change": (B,) ‖m' − m‖ / ‖m‖, "spearman": (B,) rank correlation of |maps|,
    "logits": the largest |logit difference| of the two models, "invariant": (B,) change ≤ tolerance}``.
    """
    x = images.to(model.device).float()
    targets = resolve_targets(model, x, target)
    other = shifted_model(model, shift, x)
    with torch.no_grad():
        gap = float((model(x) - other(x + shift)).abs().max())
    a = relevance(model, x, method, targets, **options)
    b = relevance(other, x + shift, method, targets, **options)
    change = (b - a).flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1).clamp(min=1e-12)
    ranks = torch.tensor([spearman(a[i], b[i]) for i in range(len(a))])
    return {"change": change, "spearman": ranks, "logits": gap, "invariant": change <= tolerance}
