"""Neural style transfer (Gatys, Ecker & Bethge 2016): the content's features at one layer,
the styles' statistics at several, and a checkerboard penalty, optimised together.

Recipe: pixels initialised from the content (or noise), ``content_weight`` × relative feature
error + ``style_weight`` × relative style error (Gram or mean/covariance) + ``checker_weight`` ×
the checkerboard's energy (+ ``tv_weight`` × TV), Adam on a Fourier image shifted by up to
``jitter`` px each step, over a coarse-to-fine ladder (128 px, then twice as large each scale up to ``size``,
each starting from the previous result). Several styles blend by their statistics.
``preserve_colors``: ``luminance`` transfers on luma only and takes the chroma from the content;
``match`` first gives the styles the content's colour mean and covariance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..antialias import blurred_strides
from ..device import seeded
from ..errors import BadValue, SynthvizError
from ..faststyle.masks import composite, load_masks, masked_style_objective, note_unplaced_styles
from ..io import resize, as_image
from ..layers import capture
from ..objectives import feature_match
from ..params import FourierImage, PixelImage, make_param
from ..models import DEFAULT_MODEL, Model, ModelLike, load_model
from ..regularizers import checkerboard, total_variation
from ..transforms import roll
from ..result import Result
from .registry import register_technique
from ..checks import non_negative, positive
from .common import ImageLike, require
from ..painting import (MIN_SIDE, blend_weights, check_choice, check_min_side, check_stat, content_layer as
                         get_content_layer, default_lr, ladder_sizes, layer_weights as get_layer_weights,
                         luminance, match_color, pooling, run_ladder, scale_steps, score, style_layers as
                         get_style_layers, style_objective, style_targets, warn_grey_style, with_chroma)
from ..painting.prints import PrintStyle, check_prints
from ..painting.smoothing import FeatureTransform, feature_transform, smooth_acts, smoothed

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
          content_weight: float = 1.0, style_weight: float = 15.0, tv_weight: float = 0.0,
          checker_weight: float = 1300.0, jitter: int | None = None,
          blend: str | Sequence[float] | None = None, style_scale: float = 1.0,
          content_layer: str | None = None, style_layers: str | Sequence[str] | None = None,
          layer_weights: str | Sequence[float] | None = None, stat: str = "gram", init: str = "content",
          preserve_colors: bool | str = False, scales: int | None = None, param: str = "fourier",
          optimizer: str = "adam", lr: float | None = None, steps: int | None = None, pool: str = "max",
          seed: int | None = 0, device: str | None = None, progress: bool | str = False,
          frame_every: int = 0, masks: ImageLike | Sequence[ImageLike] | None = None, smooth: str = "none",
          temperature: float = 1.0, tile: int | None = None, average: float = 0.0) -> Result:
    """Paint ``content`` in the style of ``styles`` (one image or a list; paths or (1, 3, H, W) tensors).

    Args:
        size: the output's longer side (the content's aspect ratio is kept).
        content_weight, style_weight: weights of the relative content and style errors (relative, so
            1 and 15 are comparable). checker_weight: weight of the checkerboard's energy
            (:func:`~synthviz.regularizers.checker_norm`); tv_weight: of total variation, which
            also smooths away the style's fine texture (0 by default since 0.5).
        jitter: each step sees the image rolled by up to this many pixels, so the strided
            convolutions' grid never stays in place (0 = off; default 1 with Adam, 0 with L-BFGS,
            whose line search needs the same objective at every call).
        blend: one weight per style image (normalised; default equal).
        style_scale: style images are resized to this fraction of the output's longer side.
        content_layer, style_layers, layer_weights: default to the model's ``style_content`` (else
            ``content``) and ``style`` presets.
        stat: ``gram`` or ``moments`` (mean and covariance). init: ``content`` or ``noise``.
        preserve_colors: keep the content's colours: ``True``/``"luminance"`` (transfer on luma only)
            or ``"match"`` (match the styles' colours to the content's first).
        scales: ladder sizes (default: start at 128 px, double up to ``size``; 1 = full size only).
        param: ``fourier`` (default) or ``pixel``. optimizer: ``adam`` (default) or ``lbfgs`` (lr 1).
            The defaults (Adam on a decorrelated Fourier image, jittered, with the checkerboard
            penalty) paint without the checkerboard that L-BFGS on pixels leaves through the strided
            convolutions, and move more style at equal content than 0.4's total variation did
            (docs: Quality, benchmarks/style_quality.py).
        steps: steps at the coarsest scale; each finer scale gets half (default 100; 200 before 0.5).
        pool: ``avg`` swaps max-pooling for average pooling during the render; ``blur`` runs every
            stride-2 convolution anti-aliased (stride 1, binomial blur, subsample: no checkerboard
            from strided gradients, for networks such as EfficientNet that reduce by striding).
            The model is restored after.
        masks: one mask per style image (white = that style; Gatys et al. 2017 spatial control):
            each style's statistics are matched inside its mask only, and where no mask is set
            the result is the content.
        smooth: ``softmax`` reads every style and content layer through SWAG's softmax over its
            C·H·W features per image (Wang et al. 2021; ``temperature`` divides the features first),
            which makes networks other than VGG paint stronger style; ``none`` uses the raw features.
        tile: prints (4096 px and more): every scale larger than ``tile`` px gathers its content and
            Gram statistics over tiles of ``tile`` px and back-propagates tile by tile (the grid moved
            at random each step), so memory is bounded by a tile; the ladder then grows by √2 a scale.
            Gram statistics without masks or ``smooth`` only.
        average: the result is the exponential moving average of the last scale's iterates with
            this decay per step (e.g. 0.9; 0 = the last iterate).

    Returns a :class:`~synthviz.result.Result`; ``info`` holds ``content_loss`` and
    ``style_loss`` of the result and of the start (``*_start``), the layers and a ``report`` line.
    """
    mode = _check_options(stat, optimizer, param, init, pool, preserve_colors)
    transform = feature_transform(smooth, temperature)
    steps = 100 if steps is None else steps
    _check_numbers(steps, lr, style_scale, size, content_weight, style_weight, tv_weight, checker_weight)
    non_negative("jitter", jitter, integer=True)
    jitter = (0 if optimizer == "lbfgs" else 1) if jitter is None else jitter
    require(content, "content image")
    style_list = _style_list(styles)
    mix = blend_weights(blend, len(style_list))
    _check_blend_and_masks(mix, blend, masks)
    m = load_model(model, weights, device)
    non_negative("average", average)
    check_prints(m, size, tile, {"--stat moments": stat != "gram", "--mask": masks is not None,
                                 "--smooth": smooth != "none"})
    s_layers = get_style_layers(m, style_layers)
    c_layer = get_content_layer(m, content_layer, role="style_content")
    lw = get_layer_weights(layer_weights, s_layers)

    base, style_imgs = _read_images(content, style_list)
    warn_grey_style(base, style_imgs, mode is not None)  # called here: its warning points at style's caller
    inputs = _ladder_inputs(base, style_imgs, mode, size, scales, masks, m.device, tile)
    lr = default_lr(optimizer, param, lr)
    recipe = _Recipe(m, inputs, c_layer, s_layers, lw, mix, stat, style_scale,
                     (content_weight, style_weight, tv_weight, checker_weight), init, param, transform, tile)

    with blurred_strides(m.net) if pool == "blur" else pooling(m, pool):
        recipe.build()
        with seeded(seed):  # the same noise run_ladder starts from
            start_image = recipe.start(*inputs.sizes[0]).image().to(m.device) if init == "noise" else None
        result = run_ladder(m, inputs.sizes, recipe.objective_at, recipe.start, steps=scale_steps(steps, len(inputs.sizes)),
                            optimizer=optimizer, lr=lr, seed=seed, device=device, progress=progress, label="style",
                            transforms_at=(lambda h, w: roll(jitter)) if jitter else None,
                            frame_every=frame_every, average=average)
        _restore_colors_and_masks(result, inputs, mode)
        losses = recipe.losses(result.images, start_image, mode)
    _describe(result, recipe, mode, losses)
    return result


def _check_options(stat: str, optimizer: str, param: str, init: str, pool: str,
                   preserve_colors: bool | str | None) -> str | None:
    """Refuse an unknown statistic, optimizer, parameterization, init or pooling; the colour mode."""
    check_stat(stat)
    check_choice("optimizer", optimizer, ("lbfgs", "adam"))
    check_choice("parameterization", param, ("pixel", "fourier"))
    check_choice("init", init, ("content", "noise"))
    check_choice("pool", pool, ("max", "avg", "blur"))
    return _color_mode(preserve_colors)


def _check_numbers(steps: int, lr: float | None, style_scale: float, size: int, content_weight: float,
                   style_weight: float, tv_weight: float, checker_weight: float) -> None:
    positive("steps", steps, integer=True)
    positive("lr", lr)
    positive("style_scale", style_scale)
    positive("size", size, integer=True)
    for name, value in (("content_weight", content_weight), ("style_weight", style_weight), ("tv_weight", tv_weight),
                        ("checker_weight", checker_weight)):
        non_negative(name, value)


def _check_blend_and_masks(mix: list[float], blend, masks) -> None:
    """With masks each style paints its own region (``blend`` would be ignored: refused); without,
    several styles are blended over the whole image: a note says so."""
    if masks is None:
        note_unplaced_styles(mix, stacklevel=4)  # points at style's caller
    elif blend is not None:
        raise BadValue("--blend and --mask do not go together: with masks each style paints its own region; "
                       "drop --blend, or drop --mask to blend the styles over the whole image")


def _style_list(styles: ImageLike | Sequence[ImageLike] | None) -> list[ImageLike]:
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [] if styles is None else [styles]
    if not style_list:
        raise SynthvizError("no style image given; pass at least one STYLE image")
    return style_list


def _read_images(content: ImageLike, style_list: Sequence[ImageLike]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The content (1, 3, H, W) and the style images, each checked large enough."""
    base = as_image(content, what="content image")
    style_imgs = [as_image(s, what=f"style image {i + 1}") for i, s in enumerate(style_list)]
    for i, s in enumerate(style_imgs):
        check_min_side(s, f"style image {i + 1}")
    return base, style_imgs


@dataclass
class _Inputs:
    """What the recipe paints from: ``base`` the content at output size (1, 3, h, w); ``content``
    what the content objective sees (its luma when preserving luminance) and ``styles`` the style
    images (1, 3, H, W) after colour preservation, both on the model's device; ``sizes`` the
    ladder; ``masks`` one (1, 1, h, w) per style, or None."""

    base: torch.Tensor
    content: torch.Tensor
    styles: list[torch.Tensor]
    sizes: list[tuple[int, int]]
    masks: list[torch.Tensor] | None


def _ladder_inputs(base: torch.Tensor, style_imgs: list[torch.Tensor], mode: str | None, size: int,
                   scales: int | None, masks, device: torch.device, tile: int | None = None) -> _Inputs:
    """The content at ``size`` (longer side), the ladder, the masks and the colour-preserved styles."""
    base = resize(base, size)
    h, w = base.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise SynthvizError(f"the content is {w}x{h} px at --size {size}: too thin; use a larger --size")
    sizes = ladder_sizes(h, w, scales, factor=2 ** 0.5 if tile else 2.0)  # prints: finer steps, less to repair
    mask_list = load_masks(masks, len(style_imgs), (h, w)) if masks is not None else None
    if mode == "match":
        style_imgs = [match_color(s, base) for s in style_imgs]
    run_content = luminance(base) if mode == "luminance" else base
    if mode == "luminance":
        style_imgs = [_match_luma(s, base) for s in style_imgs]
    return _Inputs(base, run_content.to(device), [s.to(device) for s in style_imgs], sizes, mask_list)


@dataclass
class _Recipe:
    """The objective at each ladder size, content_weight × content error + style_weight × style
    error (+ the pixel penalties), and the image each run starts from."""

    model: Model
    inputs: _Inputs
    content_layer: str
    style_layers: list[str]
    layer_weights: list[float]
    blend: list[float]
    stat: str
    style_scale: float
    weights: tuple[float, float, float, float]  # content, style, total variation, checkerboard
    init: str
    param: str
    transform: FeatureTransform | None = None  # SWAG's softmax, or None
    tile: int | None = None  # sizes larger than this are painted tile by tile (prints)
    parts: dict = field(default_factory=dict)  # (h, w) -> (content objective, style objective)

    def build(self) -> None:
        """The content and style objectives at every ladder size (under the render's pooling)."""
        m, stat = self.model, self.stat
        for sh, sw in self.inputs.sizes:
            c = resize(self.inputs.content, (sh, sw))
            side = self.style_scale * max(sh, sw)
            scaled = [resize(s, max(MIN_SIDE, round(side))) for s in self.inputs.styles]
            scaled = [s if min(s.shape[-2:]) >= MIN_SIDE else resize(s, (max(MIN_SIDE, s.shape[-2]), max(MIN_SIDE, s.shape[-1])))
                      for s in scaled]
            if self.tile and max(sh, sw) > self.tile:
                self.parts[sh, sw] = PrintStyle.of(m, c, scaled, self.blend, self.style_layers, self.layer_weights,
                                                   self.content_layer, self.weights[:2], self.tile)
                continue
            t = self.transform
            content_target = smooth_acts(capture(m, c, [self.content_layer]), t)[self.content_layer]
            content_obj = feature_match(self.content_layer, content_target)
            style_obj = (masked_style_objective(m, scaled, self.inputs.masks, self.style_layers, self.layer_weights, stat, t)
                         if self.inputs.masks
                         else style_objective(style_targets(m, scaled, self.blend, self.style_layers, stat, t),
                                              self.layer_weights, stat))
            self.parts[sh, sw] = (smoothed(content_obj, t), smoothed(style_obj, t))

    def objective_at(self, sh: int, sw: int):
        content_weight, style_weight, tv_weight, checker_weight = self.weights
        if isinstance(self.parts[sh, sw], PrintStyle):
            total = self.parts[sh, sw].objective()
        else:
            content_obj, style_obj = self.parts[sh, sw]
            total = content_weight * content_obj + style_weight * style_obj
        if tv_weight:
            total = total + total_variation(tv_weight)
        return total + checkerboard(checker_weight) if checker_weight else total

    def start(self, sh: int, sw: int):
        if self.init == "noise":
            return make_param(self.param, 1, (sh, sw))
        c = resize(self.inputs.content, (sh, sw)).cpu().contiguous()
        return PixelImage(1, sh, sw, init=c) if self.param == "pixel" else FourierImage(1, sh, sw, init=c)

    def losses(self, images: torch.Tensor, start_image: torch.Tensor | None, mode: str | None) -> dict[str, float]:
        """Content and style losses of ``images`` (1, 3, h, w) and of the start, measured at full
        size: the start is the content itself, or the first noise upsampled."""
        m, (h, w) = self.model, self.inputs.base.shape[-2:]
        image = images.to(m.device)
        first = resize(self.inputs.content, (h, w)) if self.init == "content" else resize(start_image, (h, w))
        run_image = luminance(image) if mode == "luminance" else image
        parts = self.parts[h, w]
        if isinstance(parts, PrintStyle):
            (c, s), (c0, s0) = parts.losses(run_image), parts.losses(first)
        else:
            content_obj, style_obj = parts
            c, s = -score(m, content_obj, run_image), -score(m, style_obj, run_image)
            c0, s0 = -score(m, content_obj, first), -score(m, style_obj, first)
        losses = {"content_loss": c, "style_loss": s, "content_loss_start": c0, "style_loss_start": s0}
        return {k: v + 0.0 for k, v in losses.items()}  # no "-0" in reports


def _restore_colors_and_masks(result: Result, inputs: _Inputs, mode: str | None) -> None:
    """The content's chroma back (luminance mode); the content itself where no mask is set."""
    if mode == "luminance":
        result.images = with_chroma(result.images, inputs.base)
        result.frames = [with_chroma(f, inputs.base) for f in result.frames]
    if inputs.masks:  # no style where no mask is set
        result.images = composite([result.images], [sum(inputs.masks)], inputs.base.to(result.images))


def _describe(result: Result, recipe: _Recipe, mode: str | None, losses: dict[str, float]) -> None:
    """The result's score (minus the weighted loss), label and ``info`` with its report line."""
    m, stat, (h, w) = recipe.model, recipe.stat, recipe.inputs.base.shape[-2:]
    content_weight, style_weight = recipe.weights[:2]
    result.scores = torch.tensor([-(content_weight * losses["content_loss"] + style_weight * losses["style_loss"])])
    result.labels = [f"style on {m.name} ({stat})"]
    smooth = f"softmax, temperature {recipe.transform.temperature:g}" if recipe.transform is not None else "none"
    result.info.update(model=m.name, content_layer=recipe.content_layer, style_layers=recipe.style_layers, stat=stat,
                       smooth=smooth,
                       blend=recipe.blend, preserve_colors=mode, **losses,
                       report=f"style {w}x{h} on {m.name} ({len(recipe.inputs.sizes)} scale(s)): content loss "
                              f"{losses['content_loss_start']:.3g} -> {losses['content_loss']:.3g}, style loss "
                              f"{losses['style_loss_start']:.3g} -> {losses['style_loss']:.3g}")
