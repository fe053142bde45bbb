"""Texture synthesis (Gatys, Ecker & Bethge 2015): a new image whose style statistics (Gram
matrices, or means and covariances) on several layers match an example's.

Recipe: pixels (or Fourier coefficients) from noise, style statistics on the model's style
layers, L-BFGS, over a coarse-to-fine ladder of sizes (each scale matches the example shrunk
by the same factor, so large structures are laid down first). ``tileable``: circular padding
in the network and random rolls of the image, so the texture wraps seamlessly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import SynthvizError
from ..io import resize, as_image
from ..models import DEFAULT_MODEL, ModelLike, load_model
from ..regularizers import total_variation
from ..transforms import roll
from ..result import Result
from .registry import register_technique
from ..checks import non_negative, positive
from .common import ImageLike, require
from ..painting import (MIN_SIDE, check_choice, check_min_side, check_stat, circular_padding, ladder_sizes,
                         layer_weights as get_layer_weights, match_histogram, pooling, run_ladder,
                         scale_steps, score, style_layers, style_objective, style_targets, default_lr, is_grey)
from ..painting.prints import PrintStyle, check_prints
from ..painting.smoothing import feature_transform, smoothed


def output_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``256`` -> (256, 256); ``(h, w)`` / ``[h, w]`` as given."""
    if isinstance(size, int):
        h = w = size
    else:
        try:
            h, w = (int(v) for v in size)
        except (TypeError, ValueError):
            raise SynthvizError(f"size must be one number or (height, width), not {size!r}") from None
    if min(h, w) < MIN_SIDE:
        raise SynthvizError(f"size {w}x{h} is too small; use --size {MIN_SIDE} or more")
    return h, w


@register_technique("texture", example={"example": "skimage:brick", "size": 64, "example_size": 96, "steps": 2, "scales": 1})
def texture(model: ModelLike = DEFAULT_MODEL, example: ImageLike | None = None, *,
            size: int | Sequence[int] = 256, weights: str = "default", layers: str | Sequence[str] | None = None,
            layer_weights: str | Sequence[float] | None = None, stat: str = "gram",
            example_size: int | None = None, scales: int | None = None, tileable: bool = False,
            param: str = "fourier", optimizer: str = "lbfgs", lr: float | None = None, steps: int | None = None,
            tv_weight: float = 0.0, histogram: bool = False, pool: str = "max", seed: int | None = 0,
            device: str | None = None, progress: bool | str = False, frame_every: int = 0, smooth: str = "none",
            temperature: float = 1.0, tile: int | None = None) -> Result:
    """Synthesize a texture like ``example`` (a path or a (1, 3, H, W) tensor in [0, 1]) at any size.

    Args:
        size: output side (int) or (height, width); not tied to the example's size.
        layers: style layers (list or ``"a,b,c"``; default the model's ``style`` preset).
        layer_weights: one weight per style layer (normalised; default equal).
        stat: ``gram`` (Gatys) or ``moments`` (mean and covariance).
        example_size: resize the example so its longer side is this many px first (this sets the
            scale of the texture's elements); default its own size.
        scales: sizes in the coarse-to-fine ladder, each twice the previous (default: as many as keep
            the coarsest side at 128 px or more; 1 = no ladder).
        tileable: the output wraps seamlessly (circular padding + random rolls; Fourier is periodic too).
        param: ``fourier`` (default: its 1/f spectrum keeps pixel noise out) or ``pixel``. optimizer: ``lbfgs`` (lr 1) or ``adam``.
        steps: steps at the coarsest scale; each finer scale gets half (default 200).
        tv_weight: total-variation penalty weight (0 = off).
        histogram: match the colour histogram of the example at the end.
        pool: ``avg`` swaps the model's max-pooling for average pooling during the render (restored after).
        smooth: ``softmax`` matches the statistics of SWAG's per-image softmax of each layer's features
            (``temperature`` divides them first; see :mod:`synthviz.painting.smoothing`); ``none``: raw features.
        tile: prints: scales larger than ``tile`` px gather their Gram statistics and gradient tile by
            tile (:mod:`synthviz.painting.prints`; the ladder then grows by √2 a scale). Gram only,
            not ``tileable``.

    Returns a :class:`~synthviz.result.Result` (images (1, 3, H, W)); ``info`` holds
    ``style_loss_start`` / ``style_loss`` (relative style error of the starting noise and of the
    result), the layers, the ladder (``scales``) and a ``report`` line.
    """
    check_stat(stat)
    transform = feature_transform(smooth, temperature)
    check_choice("optimizer", optimizer, ("lbfgs", "adam"))
    check_choice("parameterization", param, ("pixel", "fourier"))
    steps = 200 if steps is None else steps
    positive("steps", steps, integer=True)
    positive("lr", lr)
    non_negative("tv_weight", tv_weight)
    h, w = output_size(size)
    m = load_model(model, weights, device)
    check_prints(m, min(h, w), tile, {"--stat moments": stat != "gram", "--smooth": smooth != "none",
                                       "--tileable": tileable})
    names = style_layers(m, layers)
    lw = get_layer_weights(layer_weights, names)
    ex = as_image(require(example, "texture example"), example_size, "texture example")
    check_min_side(ex, "texture example")
    sizes = ladder_sizes(h, w, scales, factor=2 ** 0.5 if tile else 2.0)
    lr = default_lr(optimizer, param, lr)
    ex = ex.to(m.device)

    with pooling(m, pool):
        # Statistics of the example shrunk like each scale; computed before the circular padding,
        # since the example itself does not wrap.
        objectives = {}
        for sh, sw in sizes:
            k = sh / h
            scaled = resize(ex, (max(MIN_SIDE, round(ex.shape[-2] * k)), max(MIN_SIDE, round(ex.shape[-1] * k))))
            if tile and max(sh, sw) > tile:
                objectives[sh, sw] = PrintStyle.of(m, None, [scaled], [1.0], names, lw, None, (0.0, 1.0), tile).objective()
                continue
            objectives[sh, sw] = smoothed(style_objective(style_targets(m, [scaled], [1.0], names, stat, transform),
                                                          lw, stat), transform)

        def objective_at(sh: int, sw: int):
            obj = objectives[sh, sw]
            return obj + total_variation(tv_weight) if tv_weight else obj

        from ..params import make_param

        grey = is_grey(ex)  # a grey example gives a grey texture (its colour distribution has no chroma)

        def start(sh: int, sw: int):
            p = make_param(param, 1, (sh, sw))
            p.grey = grey
            return p

        with circular_padding(m, tileable):
            result = run_ladder(
                m, sizes, objective_at, start,
                steps=scale_steps(steps, len(sizes)), optimizer=optimizer, lr=lr,
                transforms_at=(lambda sh, sw: roll(max(sh, sw) // 2)) if tileable and optimizer != "lbfgs" else None,
                periodic=tileable,
                seed=seed, device=device, progress=progress, label="texture", frame_every=frame_every,
                measure_at=lambda sh, sw: objectives[sh, sw])
            if histogram:
                result.images = match_histogram(result.images, ex.cpu())
            loss = -score(m, objectives[h, w], result.images)
    start = -result.info["scales"][0]["start"]
    result.scores, result.labels = torch.tensor([-loss]), [f"texture ({stat})"]
    result.info.update(
        model=m.name, layers=names, stat=stat, smooth=smooth, style_loss_start=start, style_loss=loss, tileable=tileable,
        report=f"texture {w}x{h} on {m.name} ({stat}, {len(sizes)} scale(s)): style loss {start:.4g} -> {loss:.4g}"
               f" ({100 * (1 - loss / start):.1f}% lower)" if start > 0 else f"style loss {loss:.4g}")
    return result
