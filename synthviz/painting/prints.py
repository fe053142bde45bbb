"""Style at print sizes (4096 px and more) with bounded memory: the content and style statistics of
the whole image gathered tile by tile (:mod:`synthviz.painting.tiles`), wrapped as engine parts.

:func:`tiled_style` is an objective that reads the image only (no layer, so the engine runs no
forward pass of its own): its value is minus the weighted content + style loss of the whole image,
and its gradient comes from the tiled backward pass, the tile grid moved at random every step so
no tile border stays in one place. :class:`ParameterAverage` is a step operation that keeps an
exponential moving average of the iterates and hands it back as the result (smoother prints).

    grams, content = print_targets(model, content_img, [style_img], [1.0], layers, "_blocks.4", tile=256)
    objective = tiled_style(model, grams, weights, content, tile=256)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..checks import positive
from ..cost import check_size
from ..errors import BadValue
from ..models import Model
from ..objectives import Context, Objective
from ..params import ImageParam
from .tiles import tiled_features, tiled_gram, tiled_style_gradient

MARGIN = 64  # px of context read around each tile: the border effects of EfficientNet-Lite0's deep layers fade within it


def check_prints(model: Model, size: int, tile: int | None, refused: dict[str, bool]) -> None:
    """Refuse a ``size`` whose one-pass memory estimate exceeds what is free (naming ``--tile``), a
    ``tile`` too small to hold the network's context, and with a tile the options it cannot do
    (``refused``: {option: whether it was given})."""
    if tile is None:
        check_size(model, size, fix="add --tile 512 (the gradient tile by tile, for prints) or use a smaller --size")
        return
    positive("tile", tile, integer=True)
    if tile < 64:
        raise BadValue(f"--tile {tile} is too small to hold the network's context; use --tile 256 or more")
    given = [option for option, on in refused.items() if on]
    if given:
        raise BadValue(f"--tile gathers Gram statistics of the whole image only: drop {' and '.join(given)}")
    check_size(model, tile + 2 * MARGIN, fix="use a smaller --tile")


class _TiledLoss(torch.autograd.Function):
    """(1,) loss of an image (1, 3, H, W) whose gradient was computed tile by tile in the forward."""

    @staticmethod
    def forward(ctx, image: torch.Tensor, compute):  # noqa: D102
        with torch.enable_grad():
            grad, loss = compute(image.detach())
        ctx.save_for_backward(grad)
        return image.new_tensor([loss])

    @staticmethod
    def backward(ctx, upstream: torch.Tensor):  # noqa: D102
        (grad,) = ctx.saved_tensors
        return upstream.view(-1, 1, 1, 1) * grad, None


def print_targets(model: Model, content: torch.Tensor | None, styles: Sequence[torch.Tensor], blend: Sequence[float],
                  style_layers: Sequence[str], content_layer: str | None, *, tile: int,
                  margin: int = MARGIN) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """({style layer: the blended Gram target (1, C, C)}, the content's features (1, C, h, w), None
    without a content) of ``content`` and ``styles`` (each (1, 3, H, W), any size), read tile by tile."""
    grams: dict[str, torch.Tensor] = {}
    for image, w in zip(styles, blend):
        one, _ = tiled_gram(model, image.to(model.device), style_layers, tile, margin)
        for layer in style_layers:
            grams[layer] = grams.get(layer, 0) + w * one[layer]
    if content is None:
        return grams, None
    return grams, tiled_features(model, content.to(model.device), content_layer, tile, margin)


def tiled_style(model: Model, grams: dict[str, torch.Tensor], layer_weights: Sequence[float],
                content: tuple[str, torch.Tensor, float] | None = None, *, tile: int,
                margin: int = MARGIN) -> Objective:
    """Minus Σₗ wₗ‖Gₗ − Tₗ‖²/‖Tₗ‖² (+ c‖F − F₀‖²/‖F₀‖² with ``content`` = (layer, F₀, c)) of the whole
    image (1, 3, H, W), computed tile by tile: the same value and gradient as ``gram_match`` and
    ``feature_match`` on one forward pass, with the memory of one ``tile`` (plus ``margin``)."""
    def value(c: Context) -> torch.Tensor:
        image = c.image
        if image.shape[0] != 1:
            raise BadValue("tiled style renders one image at a time; render a batch without --tile")
        if not (torch.is_grad_enabled() and image.requires_grad):
            return -image.new_tensor([sum(print_losses(model, image, grams, layer_weights, content, tile=tile,
                                                       margin=margin))])
        offset = tuple(int(v) for v in torch.randint(0, tile, (2,)))  # under the render's seed
        compute = lambda x: tiled_style_gradient(model, x, grams, layer_weights, tile=tile,  # noqa: E731
                                                 margin=margin, content=content, offset=offset)
        return -_TiledLoss.apply(image, compute)

    return Objective(value, f"style[gram, tiles of {tile} px]({', '.join(grams)})", layers=())


def print_losses(model: Model, image: torch.Tensor, grams: dict[str, torch.Tensor], layer_weights: Sequence[float],
                 content: tuple[str, torch.Tensor, float] | None = None, *, tile: int,
                 margin: int = MARGIN) -> tuple[float, float]:
    """(weighted style loss, weighted content loss) of ``image`` (1, 3, H, W), tile by tile, no gradient."""
    image = image.detach().to(model.device)
    now, _ = tiled_gram(model, image, list(grams), tile, margin)
    style = sum(w * float((now[n] - t).pow(2).sum() / t.pow(2).sum()) for (n, t), w in zip(grams.items(), layer_weights))
    if content is None:
        return style, 0.0
    layer, target, weight = content
    f = tiled_features(model, image, layer, tile, margin)
    return style, weight * float((f - target.to(f)).pow(2).sum() / target.pow(2).sum())


@dataclass
class PrintStyle:
    """Style at one print size: ``content_weight`` × the content error + ``style_weight`` × Σₗ wₗ ×
    the style errors, every statistic of the whole image gathered tile by tile. ``grams``: {layer:
    the blended target Gram (1, C, C)}; ``content``: (layer, the content's features (1, C, h, w)), None
    for a texture."""

    model: Model
    grams: dict[str, torch.Tensor]
    layer_weights: list[float]
    content: tuple[str, torch.Tensor] | None
    weights: tuple[float, float]  # content, style
    tile: int

    @classmethod
    def of(cls, model: Model, content: torch.Tensor | None, styles: Sequence[torch.Tensor], blend: Sequence[float],
           style_layers: Sequence[str], layer_weights: Sequence[float], content_layer: str | None,
           weights: tuple[float, float], tile: int) -> "PrintStyle":
        """The targets of ``content`` (1, 3, h, w; None: a texture) and ``styles`` (each (1, 3, H, W)),
        read tile by tile."""
        grams, feats = print_targets(model, content, styles, blend, style_layers, content_layer, tile=tile)
        return cls(model, grams, list(layer_weights), None if feats is None else (content_layer, feats), weights, tile)

    def objective(self) -> Objective:
        """Minus the weighted loss, as :func:`tiled_style`."""
        content_weight, style_weight = self.weights
        return tiled_style(self.model, self.grams, [style_weight * w for w in self.layer_weights],
                           (*self.content, content_weight) if self.content else None, tile=self.tile)

    def losses(self, image: torch.Tensor) -> tuple[float, float]:
        """(content loss, style loss) of ``image`` (1, 3, h, w), unweighted by ``weights``."""
        style, content = print_losses(self.model, image, self.grams, self.layer_weights,
                                      (*self.content, 1.0) if self.content else None, tile=self.tile)
        return content, style


class ParameterAverage:
    """A step operation ``op(param, step)``: an exponential moving average (``decay`` per step) of the
    parameterization's parameters, written back into it after step ``last`` so the render's result
    is the average of its iterates, not the last one (Polyak averaging: less step-to-step noise)."""

    def __init__(self, decay: float, last: int):
        if not 0 <= decay < 1:
            raise BadValue(f"the average's decay must be in [0, 1), not {decay}")
        self.decay, self.last, self.average = decay, last, None

    def __call__(self, param: ImageParam, step: int) -> None:
        current = [p.detach() for p in param.parameters()]
        if self.average is None:
            self.average = [p.clone() for p in current]
        else:
            for a, p in zip(self.average, current):
                a.lerp_(p, 1 - self.decay)
        if step == self.last:
            with torch.no_grad():
                for a, p in zip(self.average, param.parameters()):
                    p.copy_(a)
