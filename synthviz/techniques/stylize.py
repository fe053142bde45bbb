"""Fast style transfer: a trained style network (``synthviz style-train``) applied in one forward
pass (Johnson et al. 2016), one style, a mixture, or a style per masked region. The mechanics are
in :mod:`synthviz.faststyle`."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from ..errors import SynthvizError
from ..faststyle.net import TransformNet
from ..faststyle.stylize import get_net, stylize_image
from ..models import DEFAULT_MODEL, ModelLike
from ..result import Result
from ..io import as_image
from .common import ImageLike
from .registry import register_technique

with torch.random.fork_rng(devices=[]):  # the contract test's example: a tiny untrained two-style network
    torch.manual_seed(0)
    EXAMPLE_NET = TransformNet(2, (4, 8, 8), 1).eval()


@register_technique("stylize", example={"image": "skimage:chelsea", "size": 48, "net": EXAMPLE_NET, "style": 1})
def stylize(model: ModelLike = DEFAULT_MODEL, image: ImageLike | None = None, *,
            net: TransformNet | str | os.PathLike = "style-net.pt", style: int | Sequence[int] = 0,
            mix: str | Sequence[float] | None = None, masks: ImageLike | Sequence[ImageLike] | None = None,
            mask_from_saliency: bool = False, saliency_method: str = "gradcam", threshold: float = 0.5,
            grabcut: bool = False, size: int | None = None, device: str | None = None,
            style_images: ImageLike | Sequence[ImageLike] | None = None, alpha: float = 1.0,
            preserve_colors: bool = False) -> Result:
    """Paint ``image`` with a style network ``net`` (a checkpoint path or a :class:`TransformNet`).
    ``model`` is the classifier whose saliency makes the mask with ``mask_from_saliency``.

    Args:
        style: a style index (counted from 0 in training order), or one per mask.
        mix: one weight per style of the network, e.g. ``"0.3,0.7"``: the styles' normalisation
            parameters are mixed (overrides ``style``).
        masks: one mask per style (grey image or tensor, white = styled); the content shows
            where no mask is set.
        mask_from_saliency: style only where ``model`` looks (``saliency_method`` map scaled
            to [0, 1], thresholded at ``threshold``, refined by GrabCut with ``grabcut``).
        size: resize the image's longer side first (default: as it is; the output has its size).
        style_images: with an AdaIN ``net`` (``synthviz adain-train``): any style image(s), no retraining
            (``mix``: one weight per style image; ``masks``: one per style image); ``alpha`` 0..1 trades
            style for content; ``preserve_colors`` recolours the styles to the content's colours first.

    Returns a :class:`Result`: ``images`` (1, 3, H, W); with a mask the figure is content | mask | output.
    """
    if image is None:
        raise SynthvizError("no image given; pass an image path or a (1, 3, H, W) tensor")
    if style_images is not None:
        from ..faststyle.adain_stylize import adain_stylize

        return adain_stylize(net, image, style_images, mix=mix, alpha=alpha, preserve_colors=preserve_colors,
                             masks=masks, size=size, device=device)
    transform, names = get_net(net, device)
    return stylize_image(transform, names, as_image(image, size, what="image"), style=style, mix=mix, masks=masks,
                         mask_from_saliency=mask_from_saliency, model=model, saliency_method=saliency_method,
                         threshold=threshold, grabcut=grabcut, device=device)
