"""Anti-aliased strides (Zhang 2019, "Making convolutional networks shift-invariant again"),
put into a model for the duration of a render.

A stride-2 convolution samples every other position, so the gradient it sends back to the
image has a 2-pixel period: an optimised image (style transfer, inversion) picks up a
checkerboard. :func:`blurred_strides` makes each stride-2 convolution run at stride 1, blurs its
output with a binomial [1, 2, 1]² filter and then keeps every other position, on the grid the
strided convolution sampled (the same output size). The network computes nearly the same
features and its gradients are smooth. The model's modules are put back afterwards, even on
error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

_BINOMIAL = torch.tensor([1.0, 2.0, 1.0])


class BlurredStride(nn.Module):
    """A stride-2 convolution ``conv`` as stride-1 conv -> [1, 2, 1]² blur -> subsample by 2.

    (B, C, H, W) -> (B, C', ceil(H/2), ceil(W/2)), the output grid centred where ``conv`` samples
    with TensorFlow's "same" padding (as EfficientNet's ``Conv2dStaticSamePadding`` and plain
    ``nn.Conv2d`` with ``padding=k//2`` do for odd kernels)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv
        k = _BINOMIAL[:, None] * _BINOMIAL[None, :]
        self.register_buffer("kernel", (k / k.sum())[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        kh, kw = c.kernel_size
        dh, dw = c.dilation
        ph, pw = dh * (kh - 1) // 2, dw * (kw - 1) // 2
        y = F.conv2d(F.pad(x, (pw, pw, ph, ph)), c.weight, c.bias, 1, 0, c.dilation, c.groups)
        h, w = y.shape[-2:]
        y = F.pad(y, (1, 1 + w % 2, 1, 1 + h % 2), mode="replicate")
        ch = y.shape[1]
        y = F.conv2d(y, self.kernel.to(y).expand(ch, 1, 3, 3), groups=ch)
        # TF "same" padding samples centres 2i + (k - 1) / 2 - pad_before = 2i + 1 for even inputs
        offset = self._offset(x.shape[-2], kh, dh), self._offset(x.shape[-1], kw, dw)
        return y[..., offset[0] :: 2, offset[1] :: 2][..., : -(-x.shape[-2] // 2), : -(-x.shape[-1] // 2)]

    def _offset(self, size: int, k: int, d: int) -> int:
        """Where the strided conv's first output is centred, in input positions (0 or 1)."""
        pad = getattr(self.conv, "static_padding", None)
        if isinstance(pad, nn.ZeroPad2d):
            before = pad.padding[2] if isinstance(pad.padding, tuple) else pad.padding
        else:
            before = self.conv.padding[0] if isinstance(self.conv.padding, tuple) else 0
        return max(0, d * (k - 1) // 2 - int(before))


def _strided(m: nn.Module) -> bool:
    return (isinstance(m, nn.Conv2d) and tuple(m.stride) == (2, 2) and m.kernel_size[0] % 2 == 1
            and m.kernel_size[1] % 2 == 1 and m.padding_mode == "zeros")


@contextlib.contextmanager
def blurred_strides(net: nn.Module) -> Iterator[nn.Module]:
    """Replace every stride-2 ``nn.Conv2d`` (odd kernel) of ``net`` by a :class:`BlurredStride` for
    the duration; the original modules are put back after, even on error or Ctrl-C."""
    swapped = []
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if _strided(child):
                wrapper = BlurredStride(child).to(child.weight.device)
                setattr(parent, name, wrapper)
                swapped.append((parent, name, child))
    try:
        yield net
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
