"""Neural style transfer (Gatys, Ecker & Bethge 2016): the content's features at one layer,
the styles' statistics at several, and a little total variation, optimised together.

Recipe: pixels initialised from the content (or noise), ``content_weight`` × relative feature
error + ``style_weight`` × relative style error (Gram or mean/covariance) + ``tv_weight`` × TV,
L-BFGS, over a coarse-to-fine ladder (128 px, then twice as large each scale up to ``size``,
each starting from the previous result). Several styles blend by their statistics.
``preserve_colors``: ``luminance`` transfers on luma only and takes the chroma from the content;
``match`` first gives the styles the content's colour mean and covariance.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..antialias import blurred_strides
from ..engine import seeded
from ..errors import SynthvizError
from ..faststyle.masks import composite, load_masks, masked_style_objective
from ..io import resize
from ..layers import capture
from ..objectives import feature_match
from ..params import FourierImage, PixelImage, make_param
from ..models import DEFAULT_MODEL, ModelLike
from ..regularizers import total_variation
from ..result import Result
from .registry import register_technique
from ..checks import non_negative
from .common import ImageLike, get_image, get_model, positive, require
from ..painting import (MIN_SIDE, blend_weights, check_choice, check_min_side, check_stat, content_layer as
                         get_content_layer, default_lr, ladder_sizes, layer_weights as get_layer_weights,
                         luminance, match_color, pooling, run_ladder, scale_steps, score, style_layers as
                         get_style_layers, style_objective, style_targets, warn_grey_style, with_chroma)

COLOR_MODES = ("luminance", "match")


def _color_mode(preserve_colors: bool | str | None) -> str | None:
    if preserve_colors in (None, False, "", "none", "false", "no"):
        return None
    if preserve_colors is True or preserve_colors in ("true", "yes"):
        return "luminance"
    if preserve_colors not in COLOR_MODES:
        raise SynthvizError(f"unknown colour preservation '{preserve_colors}'; use luminance or match")
    return preserve_colors


def _match_luma(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance-only style (1, 3, H, W) with its luma mean and std set to the content's (Gatys 2016)."""
    ys, yc = luminance(style), luminance(content)
    return ((ys - ys.mean()) * (yc.std() / ys.std().clamp_min(1e-6)) + yc.mean()).clamp(0, 1)


@register_technique("style", example={"content": "skimage:chelsea", "styles": "skimage:brick", "size": 64, "steps": 2, "scales": 1})
def style(model: ModelLike = DEFAULT_MODEL, content: ImageLike | None = None,
          styles: ImageLike | Sequence[ImageLike] | None = None, *,
          size: int = 512, weights: str = "default",
          content_weight: float = 1.0, style_weight: float = 3.0, tv_weight: float = 200.0,
          blend: str | Sequence[float] | None = None, style_scale: float = 1.0,
          content_layer: str | None = None, style_layers: str | Sequence[str] | None = None,
          layer_weights: str | Sequence[float] | None = None, stat: str = "gram", init: str = "content",
          preserve_colors: bool | str = False, scales: int | None = None, param: str = "fourier",
          optimizer: str = "adam", lr: float | None = None, steps: int | None = None, pool: str = "max",
          seed: int | None = 0, device: str | None = None, progress: bool | str = False,
          frame_every: int = 0, masks: ImageLike | Sequence[ImageLike] | None = None) -> Result:
    """Paint ``content`` in the style of ``styles`` (one image or a list; paths or (1, 3, H, W) tensors).

    Args:
        size: the output's longer side (the content's aspect ratio is kept).
        content_weight, style_weight, tv_weight: weights of the relative content error, the relative
            style error and total variation (all relative errors, so 1 and 3 are comparable).
        blend: one weight per style image (normalised; default equal).
        style_scale: style images are resized to this fraction of the output's longer side.
        content_layer, style_layers, layer_weights: default to the model's ``content``/``style`` presets.
        stat: ``gram`` or ``moments`` (mean and covariance). init: ``content`` or ``noise``.
        preserve_colors: keep the content's colours: ``True``/``"luminance"`` (transfer on luma only)
            or ``"match"`` (match the styles' colours to the content's first).
        scales: ladder sizes (default: start at 128 px, double up to ``size``; 1 = full size only).
        param: ``fourier`` (default) or ``pixel``. optimizer: ``adam`` (default) or ``lbfgs`` (lr 1).
            The defaults (Adam on a decorrelated Fourier image, ``tv_weight`` 200) paint without the
            checkerboard that L-BFGS on pixels leaves through the strided convolutions
            (benchmarks/style_default.py: 1.24× the content's checkerboard statistic against 1.72×,
            3.3× faster, at 512 px).
        steps: steps at the coarsest scale; each finer scale gets half (default 200).
        pool: ``avg`` swaps max-pooling for average pooling during the render; ``blur`` runs every
            stride-2 convolution anti-aliased (stride 1, binomial blur, subsample: no checkerboard
            from strided gradients, for networks such as EfficientNet that reduce by striding).
            The model is restored after.
        masks: one mask per style image (white = that style; Gatys et al. 2017 spatial control):
            each style's statistics are matched inside its mask only, and where no mask is set
            the result is the content.

    Returns a :class:`~synthviz.result.Result`; ``info`` holds ``content_loss`` and
    ``style_loss`` of the result and of the start (``*_start``), the layers and a ``report`` line.
    """
    check_stat(stat)
    check_choice("optimizer", optimizer, ("lbfgs", "adam"))
    check_choice("parameterization", param, ("pixel", "fourier"))
    check_choice("init", init, ("content", "noise"))
    check_choice("pool", pool, ("max", "avg", "blur"))
    mode = _color_mode(preserve_colors)
    steps = 200 if steps is None else steps
    positive("steps", steps, integer=True)
    positive("lr", lr)
    positive("style_scale", style_scale)
    positive("size", size, integer=True)
    for name, value in (("content_weight", content_weight), ("style_weight", style_weight), ("tv_weight", tv_weight)):
        non_negative(name, value)
    require(content, "content image")
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [] if styles is None else [styles]
    if not style_list:
        raise SynthvizError("no style image given; pass at least one STYLE image")
    mix = blend_weights(blend, len(style_list))
    m = get_model(model, weights, device)
    m.check_size(size)
    s_layers = get_style_layers(m, style_layers)
    c_layer = get_content_layer(m, content_layer)
    lw = get_layer_weights(layer_weights, s_layers)

    base = get_image(content, what="content image")
    style_imgs = [get_image(s, what=f"style image {i + 1}") for i, s in enumerate(style_list)]
    for i, s in enumerate(style_imgs):
        check_min_side(s, f"style image {i + 1}")
    warn_grey_style(base, style_imgs, mode is not None)
    base = resize(base, size)
    h, w = base.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise SynthvizError(f"the content is {w}x{h} px at --size {size}: too thin; use a larger --size")
    sizes = ladder_sizes(h, w, scales)
    mask_list = load_masks(masks, len(style_imgs), (h, w)) if masks is not None else None
    lr = default_lr(optimizer, param, lr)

    if mode == "match":
        style_imgs = [match_color(s, base) for s in style_imgs]
    run_content = luminance(base) if mode == "luminance" else base
    if mode == "luminance":
        style_imgs = [_match_luma(s, base) for s in style_imgs]
    dev = m.device
    run_content, style_imgs = run_content.to(dev), [s.to(dev) for s in style_imgs]

    with blurred_strides(m.net) if pool == "blur" else pooling(m, pool):
        parts = {}
        for sh, sw in sizes:
            c = resize(run_content, (sh, sw))
            side = style_scale * max(sh, sw)
            scaled = [resize(s, max(MIN_SIDE, round(side))) for s in style_imgs]
            scaled = [s if min(s.shape[-2:]) >= MIN_SIDE else resize(s, (max(MIN_SIDE, s.shape[-2]), max(MIN_SIDE, s.shape[-1])))
                      for s in scaled]
            content_obj = feature_match(c_layer, capture(m, c, [c_layer])[c_layer])
            style_obj = (masked_style_objective(m, scaled, mask_list, s_layers, lw, stat) if mask_list
                         else style_objective(style_targets(m, scaled, mix, s_layers, stat), lw, stat))
            parts[sh, sw] = (content_obj, style_obj)

        def objective_at(sh: int, sw: int):
            content_obj, style_obj = parts[sh, sw]
            total = content_weight * content_obj + style_weight * style_obj
            return total + total_variation(tv_weight) if tv_weight else total

        def start(sh: int, sw: int):
            if init == "noise":
                return make_param(param, 1, (sh, sw))
            c = resize(run_content, (sh, sw)).cpu().contiguous()
            return PixelImage(1, sh, sw, init=c) if param == "pixel" else FourierImage(1, sh, sw, init=c)

        with seeded(seed):  # the same noise run_ladder starts from
            start_image = start(*sizes[0]).image().to(dev) if init == "noise" else None
        result = run_ladder(m, sizes, objective_at, start, steps=scale_steps(steps, len(sizes)), optimizer=optimizer,
                            lr=lr, seed=seed, device=device, progress=progress, label="style", frame_every=frame_every)
        if mode == "luminance":
            result.images = with_chroma(result.images, base)
            result.frames = [with_chroma(f, base) for f in result.frames]
        if mask_list:  # no style where no mask is set
            result.images = composite([result.images], [sum(mask_list)], base.to(result.images))
        content_obj, style_obj = parts[h, w]
        image = result.images.to(dev)
        # the start, measured at full size: the content itself, or the first noise upsampled
        first = resize(run_content, (h, w)) if init == "content" else resize(start_image, (h, w))
        run_image = luminance(image) if mode == "luminance" else image
        losses = {"content_loss": -score(m, content_obj, run_image), "style_loss": -score(m, style_obj, run_image),
                  "content_loss_start": -score(m, content_obj, first), "style_loss_start": -score(m, style_obj, first)}
        losses = {k: v + 0.0 for k, v in losses.items()}  # no "-0" in reports
    result.scores = torch.tensor([-(content_weight * losses["content_loss"] + style_weight * losses["style_loss"])])
    result.labels = [f"style on {m.name} ({stat})"]
    result.info.update(model=m.name, content_layer=c_layer, style_layers=s_layers, stat=stat, blend=mix,
                       preserve_colors=mode, **losses,
                       report=f"style {w}x{h} on {m.name} ({len(sizes)} scale(s)): content loss "
                              f"{losses['content_loss_start']:.3g} -> {losses['content_loss']:.3g}, style loss "
                              f"{losses['style_loss_start']:.3g} -> {losses['style_loss']:.3g}")
    return result
