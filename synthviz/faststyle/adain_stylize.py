"""Stylising with an AdaIN network (:mod:`.adain`): any style image, one forward pass, no
retraining. Several style images mix by their AdaIN targets (one weight each, as ``--mix``), or
each paints its own masked region; ``alpha`` trades style for content; ``preserve_colors`` first
gives each style image the content's colour mean and covariance (the paper's colour control)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import torch

from ..checks import in_range
from ..errors import BadValue, SynthvizError
from ..io import as_image, make_grid, resize
from ..painting import check_min_side, match_color
from ..result import Result
from .adain import AdaINNet
from .masks import composite, load_masks
from .stylize import mix_weights

AdaINLike = AdaINNet | str | os.PathLike


def get_adain(net: AdaINLike, model=None, device=None) -> AdaINNet:
    """An :class:`AdaINNet` from a checkpoint path or a network (eval mode)."""
    if isinstance(net, AdaINNet):
        return net.eval()
    from .adain_train import load_adain

    return load_adain(net, model, device)


@torch.no_grad()
def adain_stylize(net: AdaINLike, image, style_images: Sequence, *, mix: str | Sequence[float] | None = None,
                  alpha: float = 1.0, preserve_colors: bool = False, masks=None, size: int | None = None,
                  model=None, device: str | None = None) -> Result:
    """Paint ``image`` (a path or (1, 3, H, W)) in the style of ``style_images`` (paths or tensors).

    Args:
        mix: one weight per style image (normalised; default equal): their AdaIN targets are mixed.
        alpha: 1 = full style, 0 = the content's own features decoded.
        preserve_colors: recolour each style image to the content's colour mean and covariance first.
        masks: one mask per style image (white = that style; the content shows where none is set).
        size: resize the image's longer side first (the output keeps the image's size).

    Returns a :class:`Result`: ``images`` (1, 3, H, W); with masks the figure is content | mask | output.
    """
    in_range("alpha", alpha, 0, 1)
    items = list(style_images) if isinstance(style_images, (list, tuple)) else [style_images]
    if not items:
        raise SynthvizError("no style image given; pass at least one --style-image")
    adain_net = get_adain(net, model, device)
    content = as_image(image, size, what="image")
    styles = [as_image(s, what=f"style image {i + 1}") for i, s in enumerate(items)]
    for i, s in enumerate(styles):
        check_min_side(s, f"style image {i + 1}", 16)
    styles = [resize(s, max(content.shape[-2:])) for s in styles]  # statistics at the scale painted
    if preserve_colors:
        styles = [match_color(s, content) for s in styles]
    weights = mix_weights(mix, len(styles)).tolist() if mix is not None else None
    if masks is not None and mix is not None:
        raise BadValue("--mix and --mask do not go together: with masks each style image paints its own region; "
                       "drop one of them")
    t0 = time.perf_counter()
    dev = adain_net.model.device
    x, styles = content.to(dev), [s.to(dev) for s in styles]
    figure = None
    if masks is None:
        y = adain_net(x, styles, weights, alpha).cpu()
    else:
        mask_list = load_masks(masks, len(styles), tuple(content.shape[-2:]))
        y = composite([adain_net(x, [s], None, alpha) for s in styles], mask_list, x).cpu()
        coverage = torch.stack(mask_list).sum(0).clamp(max=1).expand(1, 3, -1, -1)
        figure = make_grid(torch.cat([content, coverage.cpu(), y]), ["content", "mask", "AdaIN"], ncol=3)
    seconds = time.perf_counter() - t0
    label = f"AdaIN ({len(styles)} style image{'s' if len(styles) > 1 else ''}, alpha {alpha:g})"
    info = {"seconds": seconds, "size": list(content.shape[-2:]), "alpha": alpha, "mix": weights,
            "preserve_colors": bool(preserve_colors), "layer": adain_net.layer, "model": adain_net.model.name,
            "report": f"stylized {content.shape[-1]}x{content.shape[-2]} with {label} in {seconds * 1000:.0f} ms"}
    return Result(images=y, figure=figure, labels=[label], info=info, technique="stylize", objective=label)
