"""Objectives: small composable values that score an image batch, to be maximised.

An objective maps a :class:`Context` (the image and the activations of the layers it names)
to one value per batch element, shape ``(B,)``. They compose like numbers::

    obj = channel("_blocks.8", 3) - 0.5 * channel("_blocks.8", 7)
    obj = sum(channel("_blocks.8", c, batch=i) for i, c in enumerate([3, 7, 11]))

``batch=k`` makes an objective score only batch element ``k``, so one optimization renders
a different unit in each element. A custom objective is a function of the context::

    Objective(lambda ctx: ctx["_blocks.5"][:, 3].amax(dim=(1, 2)), "max(_blocks.5:3)", ["_blocks.5"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .checks import choice
from .errors import BadValue
from .layers import LOGITS
from .registry import Registry
from .targets import as_target


@dataclass
class Context:
    """What an objective sees at one step: ``acts``, the activations of the network on the
    transformed image, and ``image`` (B, 3, H, W) in [0, 1], the image they come from: the whole
    image before the robustness transforms, or, when ``render(tile=...)`` computes the gradient
    tile by tile, the tile itself (image penalties then add up over the tiles, as the layer
    terms do; a tile never holds the whole image, so there is nothing else to give them)."""

    image: torch.Tensor
    acts: dict[str, torch.Tensor]

    def __getitem__(self, layer: str) -> torch.Tensor:
        return self.acts[layer]


class Objective:
    """A value per batch element to maximise, with the layers it reads and a readable name."""

    def __init__(self, fn: Callable[[Context], torch.Tensor], name: str = "objective",
                 layers: Sequence[str] = (), batch: int | None = None):
        self.fn, self.name, self.layers, self.batch = fn, name, tuple(dict.fromkeys(layers)), batch

    def __call__(self, ctx: Context) -> torch.Tensor:
        value = self.fn(ctx)
        size = ctx.image.shape[0]
        if value.dim() == 0:
            value = value.expand(size) / size  # a batch-wide value is shared among the elements
        if self.batch is not None:
            if not -size <= self.batch < size:
                raise BadValue(f"objective {self.name} scores batch element {self.batch} of a batch of {size}; "
                               f"use batch 0..{size - 1}")
            mask = torch.zeros(size, dtype=value.dtype, device=value.device)
            mask[self.batch] = 1
            value = value * mask
        return value

    # --- algebra: every result is itself an Objective ---
    def _combine(self, other: "Objective | float", op, symbol: str, rev: bool = False) -> "Objective":
        if isinstance(other, (int, float)):
            if other == 0 and symbol in "+-":  # sum([...]) starts from 0
                return self if not rev or symbol == "+" else -self
            const = float(other)
            return Objective(lambda c: op(const, self(c)) if rev else op(self(c), const),
                             f"{const:g} {symbol} {self.name}" if rev else f"{self.name} {symbol} {const:g}",
                             self.layers)
        if not isinstance(other, Objective):
            return NotImplemented
        a, b = (other, self) if rev else (self, other)
        return Objective(lambda c: op(a(c), b(c)), f"{a.name} {symbol} {b.name}", a.layers + b.layers)

    def __add__(self, other):
        return self._combine(other, torch.add, "+")

    def __radd__(self, other):
        return self._combine(other, torch.add, "+", rev=True)

    def __sub__(self, other):
        return self._combine(other, torch.sub, "-")

    def __rsub__(self, other):
        return self._combine(other, torch.sub, "-", rev=True)

    def __mul__(self, k: float) -> "Objective":
        if not isinstance(k, (int, float)):
            return NotImplemented
        return Objective(lambda c: k * self(c), f"{k:g} * {self.name}", self.layers)

    __rmul__ = __mul__

    def __truediv__(self, k: float) -> "Objective":
        return self * (1.0 / k)

    def __neg__(self) -> "Objective":
        return Objective(lambda c: -self(c), f"-{self.name}" if " " not in self.name else f"-({self.name})", self.layers)

    def __repr__(self) -> str:
        return f"Objective({self.name})"


OBJECTIVES: Registry[Callable[..., Objective]] = Registry("objective")
register_objective = OBJECTIVES.register


def _batch_tag(batch: int | None) -> str:
    return "" if batch is None else f"@{batch}"


def _check_unit(act: torch.Tensor, n: int, layer: str, what: str = "channel") -> int:
    """``n`` if ``act`` (B, C, ...) has a channel ``n``, else a one-line error with the valid range."""
    count = act.shape[1]
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < count:
        raise BadValue(f"{what} {n} is out of range for {layer} ({count} channels): use 0..{count - 1}")
    return n


def _flat_unit(act: torch.Tensor, n: int, layer: str = "layer") -> torch.Tensor:
    """Channel ``n`` of an activation: (B, C, H, W) -> (B, H*W); (B, C) -> (B, 1)."""
    return act[:, _check_unit(act, n, layer)].reshape(act.shape[0], -1)


@register_objective()
def channel(layer: str, n: int, batch: int | None = None) -> Objective:
    """Mean activation of channel ``n`` of ``layer`` (a fully connected output's unit ``n``)."""
    return Objective(lambda c: _flat_unit(c[layer], n, layer).mean(1), f"channel({layer}:{n}){_batch_tag(batch)}",
                     [layer], batch)


@register_objective()
def neuron(layer: str, n: int, x: int | None = None, y: int | None = None, batch: int | None = None) -> Objective:
    """Activation of channel ``n`` at one position (default: the centre)."""

    def fn(c: Context) -> torch.Tensor:
        act = c[layer]
        _check_unit(act, n, layer)
        if act.dim() == 2:
            return act[:, n]
        h, w = act.shape[-2:]
        yy, xx = h // 2 if y is None else y, w // 2 if x is None else x
        if not (0 <= xx < w and 0 <= yy < h):
            raise BadValue(f"neuron ({xx}, {yy}) is outside {layer}'s {w}x{h} grid: use x 0..{w - 1}, y 0..{h - 1}")
        return act[:, n, yy, xx]

    return Objective(fn, f"neuron({layer}:{n}@x={x},y={y}){_batch_tag(batch)}", [layer], batch)


@register_objective()
def class_score(cls: int, kind: str = "logit", batch: int | None = None) -> Objective:
    """The raw logit of class ``cls`` (``kind="logit"``) or its log-probability (``"logprob"``)."""
    choice("score", kind, ("logit", "logprob"))

    def fn(c: Context) -> torch.Tensor:
        logits = c[LOGITS]
        _check_unit(logits, cls, "the logits", "class")
        return (logits if kind == "logit" else logits.log_softmax(-1))[:, cls]

    return Objective(fn, f"{kind}({cls}){_batch_tag(batch)}", [LOGITS], batch)


@register_objective()
def target(tgt, batch: int | None = None) -> Objective:
    """Any target of the model's output (see :mod:`synthviz.targets`): a :class:`~synthviz.targets.Target`,
    a callable ``output -> (B,)`` (a regression value, an embedding similarity, a masked class score)
    or a class index (:func:`~synthviz.targets.as_target`)."""
    t = as_target(tgt)
    return Objective(lambda c: t(c[LOGITS]), f"target({t.name}){_batch_tag(batch)}", [LOGITS], batch)


@register_objective()
def layer_amplify(layer: str, channel: int | None = None, batch: int | None = None) -> Objective:
    """DeepDream: mean of squared activations of a layer (or of one of its channels)."""

    def fn(c: Context) -> torch.Tensor:
        act = c[layer] if channel is None else c[layer][:, _check_unit(c[layer], channel, layer) : channel + 1]
        return act.pow(2).reshape(act.shape[0], -1).mean(1)

    unit = layer if channel is None else f"{layer}:{channel}"
    return Objective(fn, f"dream({unit}){_batch_tag(batch)}", [layer], batch)


@register_objective()
def feature_match(layer: str, target: torch.Tensor, batch: int | None = None) -> Objective:
    """Minus the relative feature error ``||Φ(x) − Φ₀||² / ||Φ₀||²`` against ``target`` (1 or B, ...)."""
    norm = target.detach().pow(2).reshape(target.shape[0], -1).sum(1).clamp_min(1e-8)

    def fn(c: Context) -> torch.Tensor:
        diff = (c[layer] - target.to(c[layer])).pow(2).reshape(c[layer].shape[0], -1).sum(1)
        return -diff / norm.to(diff)

    return Objective(fn, f"feature_match({layer}){_batch_tag(batch)}", [layer], batch)


def gram(act: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by the number of positions. (B, C, H, W) -> (B, C, C)."""
    b, ch = act.shape[:2]
    f = act.reshape(b, ch, -1)
    return f @ f.transpose(1, 2) / f.shape[-1]


@register_objective()
def gram_match(layer: str, target: torch.Tensor, batch: int | None = None) -> Objective:
    """Minus the relative Gram error ``||G(x) − G₀||² / ||G₀||²``; ``target`` is a Gram matrix
    (1 or B, C, C) (see :func:`gram`), so the target image's size does not matter."""
    norm = target.detach().pow(2).sum((-2, -1)).clamp_min(1e-12)

    def fn(c: Context) -> torch.Tensor:
        g = gram(c[layer])
        return -(g - target.to(g)).pow(2).sum((-2, -1)) / norm.to(g)

    return Objective(fn, f"gram_match({layer}){_batch_tag(batch)}", [layer], batch)


@register_objective()
def direction(layer: str, vector: torch.Tensor, cossim_pow: float = 0.0, batch: int | None = None) -> Objective:
    """Activation along ``vector`` (C,): dot × max(0.1, cos)^p, averaged over positions."""

    def fn(c: Context) -> torch.Tensor:
        act = c[layer]
        v = vector.to(act).reshape(1, -1, *([1] * (act.dim() - 2)))
        dot = (act * v).sum(1)
        if cossim_pow:
            cos = dot / (act.norm(dim=1) * v.norm() + 1e-8)
            dot = dot * cos.clamp_min(0.1) ** cossim_pow
        return dot.reshape(act.shape[0], -1).mean(1)

    return Objective(fn, f"direction({layer}){_batch_tag(batch)}", [layer], batch)


@register_objective()
def diversity(layer: str) -> Objective:
    """Minus the mean cosine similarity of each element's Gram matrix to the others' (Lucid)."""

    def fn(c: Context) -> torch.Tensor:
        g = F.normalize(gram(c[layer]).flatten(1), dim=1)
        sim = g @ g.T
        n = sim.shape[0]
        if n < 2:
            return torch.zeros(n, device=sim.device)
        return -(sim.sum(1) - sim.diagonal()) / (n - 1)

    return Objective(fn, f"diversity({layer})", [layer])


def moments(act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and covariance over positions. (B, C, H, W) -> ((B, C), (B, C, C))."""
    b, ch = act.shape[:2]
    f = act.reshape(b, ch, -1)
    mean = f.mean(-1)
    centred = f - mean[..., None]
    return mean, centred @ centred.transpose(1, 2) / f.shape[-1]


@register_objective()
def moments_match(layer: str, target_mean: torch.Tensor, target_cov: torch.Tensor,
                  batch: int | None = None) -> Objective:
    """Minus the relative error of the feature mean and covariance (see :func:`moments`):
    ``||μ − μ₀||² / tr(Σ₀) + ||Σ − Σ₀||² / ||Σ₀||²``. Targets are (1 or B, C) and (1 or B, C, C).

    Unlike a Gram matrix (``Σ + μμᵀ``), the mean and the spread are matched separately, so blends of
    several targets are linear in both and deep layers with large means do not drown the covariance."""
    mean_norm = target_cov.detach().diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-12)
    cov_norm = target_cov.detach().pow(2).sum((-2, -1)).clamp_min(1e-12)

    def fn(c: Context) -> torch.Tensor:
        mu, cov = moments(c[layer])
        err_mu = (mu - target_mean.to(mu)).pow(2).sum(-1) / mean_norm.to(mu)
        err_cov = (cov - target_cov.to(cov)).pow(2).sum((-2, -1)) / cov_norm.to(cov)
        return -(err_mu + err_cov)

    return Objective(fn, f"moments_match({layer}){_batch_tag(batch)}", [layer], batch)


@register_objective()
def guided_dream(layer: str, guide: torch.Tensor, batch: int | None = None) -> Objective:
    """Guided DeepDream (Mordvintsev 2015): at each position, the dot product of the features with
    the best-matching guide feature, averaged over positions. ``guide``: the guide image's
    activations at ``layer`` (1, C, h, w) (any size). Its gradient is the matching guide vector."""
    g = guide.detach().reshape(guide.shape[0], guide.shape[1], -1)[0]  # (C, h*w)

    def fn(c: Context) -> torch.Tensor:
        act = c[layer]
        x = act.reshape(act.shape[0], act.shape[1], -1).transpose(1, 2)  # (B, HW, C)
        dots = x @ g.to(x)  # (B, HW, h*w)
        return dots.amax(-1).mean(1)

    return Objective(fn, f"guided_dream({layer}){_batch_tag(batch)}", [layer], batch)
