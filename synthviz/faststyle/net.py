"""The image transformation network of fast style transfer (Johnson et al. 2016), with
instance normalisation (Ulyanov et al. 2016) made conditional on the style (Dumoulin et al. 2017).

Layout: a 9x9 conv, two stride-2 convs, ``res_blocks`` residual blocks, two nearest-neighbour
upsamplings each followed by a conv (no transposed convs, so no checkerboard), a 9x9 conv and a
sigmoid. Every conv but the last is followed by :class:`CondInstanceNorm`: one scale and shift
(γ, β) per style. A style is chosen by a weight vector over the styles: one-hot for one style,
a mixture to interpolate (the (γ, β) are mixed; everything else is shared).

The upsamplings go back to the exact sizes seen on the way down, so any input size (odd ones
too) gives an output of exactly that size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SynthvizError

MIN_SIDE = 8  # the reflection padding of the 9x9 convs needs more than 4 px


@dataclass
class NetSpec:
    """What a checkpoint needs to rebuild the network (plain numbers only)."""

    styles: int = 1
    channels: list[int] = field(default_factory=lambda: [16, 32, 48])
    res_blocks: int = 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetSpec":
        return cls(styles=int(data["styles"]), channels=[int(c) for c in data["channels"]],
                   res_blocks=int(data["res_blocks"]))


class CondInstanceNorm(nn.Module):
    """Instance normalisation with one (γ, β) per style.

    ``forward(x, w)``: x (B, C, H, W), w (B, S) style weights (rows one-hot or a mixture) ->
    (B, C, H, W) = γ(w) · IN(x) + β(w), with γ(w) = w @ γ and β(w) = w @ β.
    With ``init_spread`` > 0 the styles start from different (γ, β), so they differ from the first step.
    """

    def __init__(self, channels: int, styles: int = 1, init_spread: float = 0.0):
        super().__init__()
        self.gamma = nn.Parameter(1 + init_spread * torch.randn(styles, channels))
        self.beta = nn.Parameter(init_spread * torch.randn(styles, channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        gamma, beta = w @ self.gamma, w @ self.beta  # (B, C)
        return F.instance_norm(x, eps=1e-5) * gamma[..., None, None] + beta[..., None, None]


class ConvNorm(nn.Module):
    """Reflection-padded conv (optionally strided), conditional instance norm, optional ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, styles: int, spread: float, relu: bool = True):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.norm = CondInstanceNorm(cout, styles, spread)
        self.relu = relu

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(self.pad(x)), w)
        return F.relu(x) if self.relu else x


class Residual(nn.Module):
    def __init__(self, channels: int, styles: int, spread: float):
        super().__init__()
        self.a = ConvNorm(channels, channels, 3, 1, styles, spread)
        self.b = ConvNorm(channels, channels, 3, 1, styles, spread, relu=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x, w), w)


class TransformNet(nn.Module):
    """Content image (B, 3, H, W) in [0, 1] -> stylised image (B, 3, H, W) in [0, 1].

    Args:
        styles: how many styles the network holds (conditional instance norm).
        channels: widths of the first conv and of the two downsampled stages (Johnson: 32, 64, 128;
            the slimmer default trains in minutes on a CPU).
        res_blocks: residual blocks at the lowest resolution (Johnson: 5).
        init_spread: the std of the per-style (γ, β) around (1, 0) at initialisation.
    """

    def __init__(self, styles: int = 1, channels: Sequence[int] = (16, 32, 48), res_blocks: int = 3,
                 init_spread: float = 0.25):
        super().__init__()
        if styles < 1 or len(channels) != 3 or min(channels) < 1 or res_blocks < 0:
            raise SynthvizError("a transformation net needs styles >= 1, three positive channel widths "
                                f"(not {list(channels)}) and res_blocks >= 0")
        self.spec = NetSpec(styles, list(channels), res_blocks)
        c1, c2, c3 = channels
        spread = init_spread if styles > 1 else 0.0
        self.down = nn.ModuleList([ConvNorm(3, c1, 9, 1, styles, spread), ConvNorm(c1, c2, 3, 2, styles, spread),
                                   ConvNorm(c2, c3, 3, 2, styles, spread)])
        self.res = nn.ModuleList([Residual(c3, styles, spread) for _ in range(res_blocks)])
        self.up = nn.ModuleList([ConvNorm(c3, c2, 3, 1, styles, spread), ConvNorm(c2, c1, 3, 1, styles, spread)])
        self.out = nn.Sequential(nn.ReflectionPad2d(4), nn.Conv2d(c1, 3, 9))

    @property
    def styles(self) -> int:
        return self.spec.styles

    def weights_for(self, style: int | Sequence[float] | torch.Tensor, batch: int) -> torch.Tensor:
        """A style index, or one weight per style (a mixture), -> (batch, S) weights."""
        if isinstance(style, int):
            if not 0 <= style < self.styles:
                raise SynthvizError(f"style {style} is out of range; this network holds styles 0 to {self.styles - 1}")
            w = F.one_hot(torch.tensor(style), self.styles).float()
        else:
            w = torch.as_tensor(style, dtype=torch.float32)
            if w.shape[-1] != self.styles:
                raise SynthvizError(f"{w.shape[-1]} mixing weight(s) for a network of {self.styles} style(s); "
                                    "give one weight per style")
        w = w.to(self.out[1].weight.device)
        return w.expand(batch, -1) if w.dim() == 1 else w

    def forward(self, x: torch.Tensor, style: int | Sequence[float] | torch.Tensor = 0) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1]; ``style``: an index, S weights, or (B, S) weights -> (B, 3, H, W)."""
        if min(x.shape[-2:]) < MIN_SIDE:
            raise SynthvizError(f"the image is {x.shape[-1]}x{x.shape[-2]} px; the style network needs {MIN_SIDE} px or more")
        w = self.weights_for(style, x.shape[0])
        sizes = []
        h = x
        for i, layer in enumerate(self.down):
            if i:
                sizes.append(h.shape[-2:])
            h = layer(h, w)
        for block in self.res:
            h = block(h, w)
        for layer, size in zip(self.up, reversed(sizes)):
            h = layer(F.interpolate(h, size=tuple(size), mode="nearest"), w)
        return torch.sigmoid(self.out(h))


def single_style(net: TransformNet, style: int) -> TransformNet:
    """A one-style network with ``net``'s shared weights and style ``style``'s (γ, β)."""
    one = TransformNet(1, net.spec.channels, net.spec.res_blocks)
    state = {k: (v[style : style + 1] if k.endswith((".gamma", ".beta")) else v) for k, v in net.state_dict().items()}
    one.load_state_dict(state)
    return one.to(net.out[1].weight.device)
