"""The sanity check of Adebayo et al. (2018): cascading randomization of the model's parameters.

The layers are re-initialised from the logits down, one block at a time, on a copy of the model
(the user's model is never touched). A saliency method that explains the model, not the image,
must give maps that decorrelate from the original map as more of the network is randomized; the
Spearman rank correlation of |map| measures it. Guided backprop famously fails; the vanilla
gradient passes.
"""

from __future__ import annotations

import copy
import numpy as np
import torch
from torch import nn

from ..attribution import as_batch, attribute, check_options, method_info, method_names, option_defaults, resolve_targets
from ..checks import positive
from ..engine import RenderInterrupted, seeded
from ..errors import SynthvizError
from ..io import make_grid, resize
from ..layers import Tap
from ..models import DEFAULT_MODEL, Model
from ..result import Result
from .registry import register_technique
from .common import get_model
from .saliency_figure import overlay


def randomization_blocks(model: Model, images: torch.Tensor) -> list[str]:
    """The model's blocks with parameters, in forward order (shallow to deep).

    Containers (``Sequential``, ``ModuleList``, ``ModuleDict``) are opened, other modules are
    blocks: EfficientNet-Lite0 gives ``_conv_stem, _bn0, _blocks.0 .. _blocks.15, _conv_head,
    _bn1, _fc``; VGG its convolutions and linears; ResNet ``conv1, bn1, layer1.0, ..., fc``.
    """
    def units(prefix: str, module: nn.Module):
        for name, child in module.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(child, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
                yield from units(full, child)
            elif any(True for _ in child.parameters()):
                yield full, child

    candidates = dict(units("", model.net))
    with torch.no_grad(), Tap(model, candidates, truncate=False, strict=False) as tap:
        order = list(tap(images[:1].to(model.device)))  # the blocks that ran, in forward order
    if not order:
        raise SynthvizError(f"{model.name} has no layers with parameters to randomize")
    return order


def reinitialize(module: nn.Module) -> None:
    """Fresh random parameters (each layer's own ``reset_parameters``; BatchNorm statistics reset too)."""
    for sub in module.modules():
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
        elif hasattr(sub, "reset_running_stats"):
            sub.reset_running_stats()


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of |a| and |b| (any shapes with the same number of values)."""
    from scipy.stats import spearmanr

    x, y = a.abs().flatten().double().cpu().numpy(), b.abs().flatten().double().cpu().numpy()
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # a constant map has no ranking: no correlation
        return 0.0
    return float(spearmanr(x, y).statistic)


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
           target: int | str | None = None, weights: str = "default", size: int = 224, device: str | None = None,
           depth: int | None = None, tile: int = 112, progress: bool = False, **options) -> Result:
    """Cascading randomization (Adebayo et al. 2018) of ``method`` on ``image``.

    ``target``: the class explained (default: the prediction of the intact model), kept for every
    step. ``depth``: randomize only the top ``depth`` blocks (default: all, down to the input layer).
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
    photo = as_batch(image, size)[:1]  # a bad image or size fails before the model loads
    m = get_model(model, weights, device)
    m.check_size(min(photo.shape[-2:]))
    x = photo.to(m.device)
    cls = resolve_targets(m, x, target)[0].item()
    blocks = randomization_blocks(m, x)
    top = list(reversed(blocks))[:depth]
    # a private copy: the user's model keeps its weights whatever happens here
    work = m.with_net(copy.deepcopy(m.net)).to(m.device)
    modules = dict(work.net.named_modules())
    first = attribute(work, x, name, cls, **opts)
    display, original = first.display, first.maps.cpu()
    maps, corrs, layers = [original], [1.0], ["original"]
    interrupted = False
    try:
        with seeded(opts.get("seed", 0)):
            for block in top:
                reinitialize(modules[block])
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
    info = {"cls": cls, "label": m.class_name(cls), "model": m.name, "method": name, "blocks": blocks,
            "correlations": corrs, "layers": layers}
    result = Result(images=heat, scores=torch.tensor(corrs), labels=layers, figure=figure, info=info,
                    objective=f"sanity {name}", technique="sanity", stopped="interrupted" if interrupted else None)
    if interrupted:
        raise RenderInterrupted(result)
    return result


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


__all__ = ["randomization_blocks", "reinitialize", "sanity", "spearman"]
