"""The sanity check of Adebayo et al. (2018): cascading randomization of the model's parameters.

The layers are re-initialised from the logits down, one block at a time, on a copy of the model
(the user's model is never touched). A saliency method that explains the model, not the image,
must give maps that decorrelate from the original map as more of the network is randomized; the
Spearman rank correlation of |map| measures it. Guided backprop famously fails; the vanilla
gradient passes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..attribution import attribute, check_options, method_info, method_names, option_defaults, resolve_targets
from ..checks import positive
from ..cost import check_size
from ..engine import RenderInterrupted
from ..errors import SynthvizError
from ..io import as_image, make_grid, resize
from ..models import DEFAULT_MODEL, Model, load_model
from ..overlay import overlay
from ..randomize import cascade, randomization_blocks, spearman
from ..result import Result
from ..targets import Target, detection_target
from ..detection_models import task_of
from .registry import register_technique


def line_plot(values: list[float], xs: list[float], width: int, height: int = 200,
              title: str = "") -> torch.Tensor:
    """A small line chart (3, height, width): points at pixel columns ``xs``, y from min(-0.2, values) to 1."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    lo = min(-0.2, float(np.floor(min(values) * 10) / 10))
    top, bottom, left = 22, height - 14, 30

    def y_of(v: float) -> float:
        return top + (1.0 - v) * (bottom - top) / (1.0 - lo)

    draw.text((left, 4), title, fill="black")
    for tick in [t for t in (1.0, 0.5, 0.0, -0.5, -1.0) if t >= lo]:
        y = y_of(tick)
        draw.line([(left, y), (width - 4, y)], fill=(200, 200, 200) if tick else (120, 120, 120))
        draw.text((2, y - 6), f"{tick:+.1f}"[:4], fill="black")
    pts = [(x, y_of(v)) for x, v in zip(xs, values)]
    draw.line(pts, fill=(200, 40, 40), width=2)
    for x, y in pts:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(200, 40, 40))
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)


@register_technique("sanity", example={"image": "skimage:chelsea", "method": "gradient", "size": 64, "depth": 2},
                    options=option_defaults)
def sanity(model: str | Model | nn.Module = DEFAULT_MODEL, image=None, *, method: str = "gradient",
           target=None, weights: str = "default", size: int = 224, device: str | None = None,
           depth: int | None = None, tile: int = 112, progress: bool = False, **options) -> Result:
    """Cascading randomization (Adebayo et al. 2018) of ``method`` on ``image``.

    ``target``: the class explained (default: the prediction of the intact model), or any
    :class:`~synthviz.targets.Target`, kept for every step; on a detector a box target
    (``targets.box(xyxy, K)``; default: the best detection scoring 0.5 or more, of class ``target``
    when it is a class). ``depth``: randomize only the top ``depth`` blocks (default: all, down to the input layer).
    ``tile``: the height of each map in the figure. ``options``: the method's options
    (``seed`` also seeds the re-initialisation). ``progress``: one line per step on stderr.

    Returns a Result: ``figure`` the row of maps over the correlation plot; ``images`` (S + 1, 3, H, W)
    the maps as overlays (the original first), ``scores`` the Spearman rank correlation of |map|
    with the original at each step, ``labels`` the block randomized last (``"original"`` first);
    ``info["correlations"]`` and ``info["layers"]`` the same as plain lists.
    """
    if image is None:
        raise SynthvizError("no image given; pass an image path or a (1, 3, H, W) tensor")
    names = method_names(method)
    if len(names) != 1:
        raise SynthvizError("the sanity check takes one method; pass --method NAME")
    name = names[0]
    positive("depth", depth, integer=True)
    positive("tile", tile, integer=True)
    opts = check_options(options)
    photo = as_image(image, size, batch=True)[:1]  # a bad image or size fails before the model loads
    m = load_model(model, weights, device)
    check_size(m, min(photo.shape[-2:]))
    x = photo.to(m.device)
    cls = _explained(m, x, target)  # a class index, or a Target (a detector's box, a text prompt...)
    blocks = randomization_blocks(m, x)
    top = list(reversed(blocks))[:depth]
    first = attribute(m, x, name, cls, **opts)
    display, original = first.display, first.maps.cpu()
    maps, corrs, layers = [original], [1.0], ["original"]
    interrupted = False
    try:  # on a private copy (cascade): the user's model keeps its weights whatever happens here
        for block, work in cascade(m, top, opts.get("seed", 0)):
            current = torch.nan_to_num(attribute(work, x, name, cls, **opts).maps.cpu())
            maps.append(current)
            corrs.append(spearman(original, current))
            layers.append(block)
            if progress:
                import sys

                print(f"randomized down to {block}: rank correlation {corrs[-1]:+.3f}", file=sys.stderr)
    except KeyboardInterrupt:  # Ctrl-C: the figure of the steps that finished
        interrupted = True
    maps_t = torch.cat(maps)
    figure, heat = _figure(photo.cpu(), maps_t, corrs, layers, name, tile, display)
    named = isinstance(cls, int)
    info = {"cls": cls if named else None, "label": m.class_name(cls) if named else cls.name,
            "target": f"class {cls}" if named else cls.name, "model": m.name, "method": name, "blocks": blocks,
            "correlations": corrs, "layers": layers}
    result = Result(images=heat, scores=torch.tensor(corrs), labels=layers, figure=figure, info=info,
                    objective=f"sanity {name}", technique="sanity", stopped="interrupted" if interrupted else None)
    if interrupted:
        raise RenderInterrupted(result)
    return result


def _explained(m: Model, x: torch.Tensor, target) -> int | Target:
    """What every step explains on ``x`` (1, 3, H, W): a class index (the prediction when ``target``
    is None); on a detector the box target (a given one, else the best detection scoring 0.5 or
    more, of class ``target`` when given); any other target that is not one class, as it is."""
    if task_of(m) == "detection":
        return detection_target(m, x, target)
    t = resolve_targets(m, x, target)
    return t.class_ids()[0].item() if t.is_class else t


def _figure(photo: torch.Tensor, maps: torch.Tensor, corrs: list[float], layers: list[str], method: str,
            tile: int, display: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The row of maps over the correlation plot, one (3, H, W) image; and the overlays at full size."""
    full = overlay(photo.expand(len(maps), -1, -1, -1), maps, display)
    small = resize(photo, (tile, max(1, round(photo.shape[-1] * tile / photo.shape[-2]))))
    heat = resize(full, tuple(small.shape[-2:]))
    tiles = torch.cat([small, heat])
    labels = ["photo"] + [method_info(method).label if i == 0 else f"{layer} {c:+.2f}"
                          for i, (layer, c) in enumerate(zip(layers, corrs))]
    # rows of at most 6 tiles: a figure near 2:1 stays readable as a gallery thumbnail
    grid = make_grid(tiles, labels, ncol=min(len(tiles), 6))
    left, right = 40, grid.shape[-1] - 10
    xs = [left + (right - left) * (i + 0.5) / len(corrs) for i in range(len(corrs))]  # maps in reading order
    plot = line_plot(corrs, xs, grid.shape[-1], 200,
                     "Spearman rank correlation of |map| with the original, layers randomized top down")
    return torch.cat([grid, plot], 1), full


__all__ = ["sanity"]
