"""Arbitrary style in one pass (Huang & Belongie 2017, "Arbitrary style transfer in real-time
with adaptive instance normalization"): a fixed encoder (the classifier up to one layer), AdaIN
on its features, and a trained decoder back to an image. Any style image works without
retraining: its features' channel means and spreads are given to the content's.

``adain(x, y)`` is the normalisation, :class:`AdaIN` its module, :class:`Decoder` the network
trained by :mod:`.adain_train`, :class:`AdaINNet` the three together (what a checkpoint holds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SynthvizError
from ..layers import capture, layer_shape
from ..models import Model

EPS = 1e-5


def channel_stats(x: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel, the mean and the std over positions (sqrt(var + eps), var over
    H·W positions): (B, C, H, W) -> ((B, C, 1, 1), (B, C, 1, 1))."""
    mean = x.mean((-2, -1), keepdim=True)
    std = (x.var((-2, -1), keepdim=True, unbiased=False) + eps).sqrt()
    return mean, std


def adain(x: torch.Tensor, y: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Adaptive instance normalisation: σ(y)·(x − μ(x))/σ(x) + μ(y), channel statistics over space.

    x: content features (B, C, H, W); y: style features (B or 1, C, h, w), any spatial size.
    Returns (B, C, H, W): x's layout with y's channel means and stds."""
    if x.shape[1] != y.shape[1]:
        raise SynthvizError(f"AdaIN needs as many channels in the style's features ({y.shape[1]}) as in the content's ({x.shape[1]})")
    mx, sx = channel_stats(x, eps)
    my, sy = channel_stats(y, eps)
    return sy * (x - mx) / sx + my


class AdaIN(nn.Module):
    """:func:`adain` with a content/style trade-off: ``forward(x, y, alpha)`` ->
    α·adain(x, y) + (1 − α)·x, (B, C, H, W) (``alpha`` 0 gives ``x`` back)."""

    def __init__(self, eps: float = EPS):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        return alpha * adain(x, y, self.eps) + (1 - alpha) * x


@dataclass
class DecoderSpec:
    """What a checkpoint needs to rebuild a decoder (plain numbers only): the encoder layer's
    channels, how many ×2 upsamplings undo its stride, and the widths after each."""

    in_channels: int = 40
    widths: list[int] = field(default_factory=lambda: [64, 32, 16])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DecoderSpec":
        return cls(int(data["in_channels"]), [int(w) for w in data["widths"]])


def _conv(cin: int, cout: int, relu: bool = True) -> nn.Sequential:
    layers = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class Decoder(nn.Module):
    """Features (B, C, h, w) -> image (B, 3, H, W) in [0, 1]: the encoder mirrored, each ×2 stage a
    nearest upsampling and two reflection-padded 3×3 convs (no transposed convolution, so no
    checkerboard), then a 3×3 conv to RGB and a sigmoid.

    ``forward(t, size)``: the upsamplings go back through the sizes a stride-2 encoder passes on
    the way down from ``size`` = (H, W) (ceil(H / 2^k)), the last to exactly (H, W), so any input
    size, odd ones too, gives an output of that size."""

    def __init__(self, spec: DecoderSpec):
        super().__init__()
        self.spec = spec
        widths = spec.widths
        self.head = _conv(spec.in_channels, widths[0])
        self.stages = nn.ModuleList([nn.Sequential(_conv(a, b), _conv(b, b)) for a, b in zip(widths, widths[1:] + widths[-1:])])
        self.out = _conv(widths[-1], 3, relu=False)

    def forward(self, t: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        h, w = int(size[0]), int(size[1])
        n = len(self.stages)
        x = self.head(t)
        for k, stage in enumerate(self.stages):
            scale = 2 ** (n - 1 - k)
            x = stage(F.interpolate(x, size=(math.ceil(h / scale), math.ceil(w / scale)), mode="nearest"))
        return torch.sigmoid(self.out(x))


def encoder_stride(model: Model, layer: str, size: int = 64) -> int:
    """How many ×2 reductions lie between the input and ``layer`` (its stride is 2 ** that)."""
    side = layer_shape(model, layer, size)[-1]
    return max(0, round(math.log2(size / side)))


def default_decoder(model: Model, layer: str, base: int = 16) -> DecoderSpec:
    """A decoder for ``model`` up to ``layer``: one stage per ×2 reduction, its widths halving from
    the layer (at most 8·``base``) to ``base`` at full size."""
    channels = layer_shape(model, layer, 64)[0]
    ups = encoder_stride(model, layer)
    widths = [base * 2 ** min(3, ups - 1 - k) for k in range(ups)] or [base]
    return DecoderSpec(int(channels), widths)


class AdaINNet(nn.Module):
    """Encoder (``model`` up to ``layer``, frozen) + AdaIN + :class:`Decoder`.

    ``forward(content, styles, weights, alpha)``: content (B, 3, H, W), styles a list of
    (1, 3, h, w) style images with one weight each (normalised; the AdaIN targets are mixed, as
    in the paper's style interpolation) -> (B, 3, H, W) in [0, 1]."""

    def __init__(self, model: Model, layer: str, decoder: Decoder):
        super().__init__()
        self.model, self.layer, self.decoder, self.adain = model, layer, decoder, AdaIN()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> the encoder layer's features (B, C, h, w), no gradient."""
        return capture(self.model, images.to(self.model.device), [self.layer])[self.layer]

    def target(self, content: torch.Tensor, styles: Sequence[torch.Tensor], weights: Sequence[float] | None = None,
               alpha: float = 1.0) -> torch.Tensor:
        """The features to decode: Σₖ wₖ·adain(f(c), f(sₖ)), blended with f(c) by ``alpha``. (B, C, h, w)."""
        x = self.encode(content)
        weights = [1 / len(styles)] * len(styles) if weights is None else [w / sum(weights) for w in weights]
        t = sum(w * adain(x, self.encode(s)) for s, w in zip(styles, weights))
        return alpha * t + (1 - alpha) * x

    def forward(self, content: torch.Tensor, styles: Sequence[torch.Tensor], weights: Sequence[float] | None = None,
                alpha: float = 1.0) -> torch.Tensor:
        dev = next(self.decoder.parameters()).device
        return self.decoder(self.target(content, styles, weights, alpha).to(dev), content.shape[-2:])
