"""Fast style transfer: a trained style network (``synthviz style-train``) applied in one forward
pass (Johnson et al. 2016), one style, a mixture, or a style per masked region. The mechanics are
in :mod:`synthviz.faststyle`."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import torch

from ..errors import SynthvizError
from ..faststyle.masks import load_masks, saliency_mask
from ..faststyle.net import TransformNet
from ..faststyle.stylize import apply_net, get_net, style_choices
from ..io import make_grid, resize
from ..models import DEFAULT_MODEL, ModelLike
from ..result import Result
from .common import ImageLike, get_image
from .registry import register_technique

with torch.random.fork_rng(devices=[]):  # the contract test's example: a tiny untrained two-style network
    torch.manual_seed(0)
    EXAMPLE_NET = TransformNet(2, (4, 8, 8), 1).eval()


@register_technique("stylize", example={"image": "skimage:chelsea", "size": 48, "net": EXAMPLE_NET, "style": 1})
def stylize(model: ModelLike = DEFAULT_MODEL, image: ImageLike | None = None, *,
            net: TransformNet | str | os.PathLike = "style-net.pt", style: int | Sequence[int] = 0,
            mix: str | Sequence[float] | None = None, masks: ImageLike | Sequence[ImageLike] | None = None,
            mask_from_saliency: bool = False, saliency_method: str = "gradcam", threshold: float = 0.5,
            grabcut: bool = False, size: int | None = None, device: str | None = None) -> Result:
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

    Returns a :class:`Result`: ``images`` (1, 3, H, W); with a mask the figure is content | mask | output.
    """
    if image is None:
        raise SynthvizError("no image given; pass an image path or a (1, 3, H, W) tensor")
    transform, names = get_net(net, device)
    x = get_image(image, size, what="image")
    choices = style_choices(transform, style, mix)
    mask_list = None
    if masks is not None and mask_from_saliency:
        raise SynthvizError("give masks or mask_from_saliency, not both")
    if mask_from_saliency:
        if len(choices) != 1:
            raise SynthvizError("a saliency mask takes one style; pass a single --style")
        from .common import get_model

        mask_list = [saliency_mask(get_model(model, device=device), x, method=saliency_method,
                                   threshold=threshold, grabcut=grabcut)]
    elif masks is not None:
        mask_list = load_masks(masks, len(choices), tuple(x.shape[-2:]))
    t0 = time.perf_counter()
    y = apply_net(transform, x, choices, mask_list)
    seconds = time.perf_counter() - t0
    label = (f"mix {','.join(f'{float(v):.2g}' for v in choices[0])}" if mix is not None
             else " + ".join(names[c] for c in choices))
    figure = None
    if mask_list is not None:
        coverage = torch.stack(mask_list).sum(0).clamp(max=1)
        figure = make_grid(torch.cat([x, resize(coverage.expand(1, 3, -1, -1), tuple(x.shape[-2:])), y]),
                           ["content", "mask", label], ncol=3)
    info = {"styles": names, "style": [c if isinstance(c, int) else c.tolist() for c in choices], "seconds": seconds,
            "size": list(x.shape[-2:]), "mask_coverage": None if mask_list is None else float(coverage.mean()),
            "report": f"stylized {x.shape[-1]}x{x.shape[-2]} with {label} in {seconds * 1000:.0f} ms"}
    return Result(images=y, figure=figure, labels=[label], info=info, technique="stylize", objective=label)
