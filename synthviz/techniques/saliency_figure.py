"""The saliency comparison figure: the photo, then each method's map as a labelled heatmap overlay,
optionally beside the engine's class visualization of the same class; raw maps saved as ``.npy``."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import SynthvizError
from ..io import make_grid, resize
from .registry import register_technique
from .common import get_model
from .saliency import _batch, attribute, check_options, method_names, resolve_targets


# A perceptually ordered "inferno"-like ramp (black -> purple -> red -> orange -> pale yellow).
_RAMP = torch.tensor([[0.00, 0.00, 0.02], [0.26, 0.04, 0.41], [0.58, 0.15, 0.40], [0.87, 0.32, 0.23],
                      [0.98, 0.60, 0.04], [0.99, 1.00, 0.64]])


def colormap(values: torch.Tensor) -> torch.Tensor:
    """(..., H, W) in [0, 1] -> (..., 3, H, W) RGB, linear interpolation along the ramp."""
    v = values.clamp(0, 1) * (len(_RAMP) - 1)
    lo = v.floor().long().clamp(max=len(_RAMP) - 2)
    t = (v - lo).unsqueeze(-1)
    ramp = _RAMP.to(values.device)
    rgb = ramp[lo] * (1 - t) + ramp[lo + 1] * t
    return rgb.movedim(-1, -3)


def normalize_map(maps: torch.Tensor, display: str = "abs", q: float = 0.99) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W) in [0, 1]: |map| (or its positive part), channels reduced by max,
    divided by the per-image ``q`` quantile so a few hot pixels do not wash out the rest."""
    m = maps.abs() if display == "abs" else maps.clamp(min=0)
    m = m.amax(1, keepdim=True)
    top = torch.quantile(m.flatten(1).float(), q, dim=1).clamp(min=1e-12)
    top = torch.where(top > 1e-12, top, m.flatten(1).amax(1).clamp(min=1e-12))
    return (m / top.view(-1, 1, 1, 1)).clamp(0, 1)


def overlay(photo: torch.Tensor, maps: torch.Tensor, display: str = "abs") -> torch.Tensor:
    """Heatmap over the photo: (B, 3, H, W) in [0, 1] and (B, C, H, W) maps -> (B, 3, H, W).
    Cold pixels show the (dimmed) photo, hot ones the colour ramp."""
    m = normalize_map(maps, display)
    heat = colormap(m[:, 0])
    alpha = 0.85 * m.sqrt()
    return ((1 - alpha) * 0.75 * photo.to(maps.device) + alpha * heat).clamp(0, 1)


LABELS = {"gradient": "gradient", "grad_x_input": "grad x input", "smoothgrad": "SmoothGrad",
          "guided_backprop": "guided backprop", "gradcam": "Grad-CAM", "guided_gradcam": "guided Grad-CAM",
          "integrated_gradients": "integrated grad.", "occlusion": "occlusion"}


@dataclass
class Comparison:
    """The comparison figure and what went into it.

    Attributes:
        images: (1, 3, H', W') the labelled figure (photo, one overlay per method, [class visualization]).
        attributions: {method: :class:`Attribution`} for the photo (batch of one).
        photo: (1, 3, H, W) the photo as the model saw it. ``classviz``: (1, 3, h, w) or None.
        info: target class, label, probability, seconds per method, report lines.
    """

    images: torch.Tensor
    attributions: dict
    photo: torch.Tensor
    classviz: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    @property
    def figure(self) -> torch.Tensor:
        return self.images[0]


def _fit(image: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(1, 3, h', w') scaled to fit inside h x w and padded with white to exactly h x w."""
    fitted = resize(image, (max(1, round(image.shape[-2] * min(h / image.shape[-2], w / image.shape[-1]))),
                            max(1, round(image.shape[-1] * min(h / image.shape[-2], w / image.shape[-1])))))
    out = torch.ones(1, 3, h, w)
    top, left = (h - fitted.shape[-2]) // 2, (w - fitted.shape[-1]) // 2
    out[..., top:top + fitted.shape[-2], left:left + fitted.shape[-1]] = fitted
    return out


@register_technique("saliency_figure")
def saliency_figure(image=None, methods: str | Sequence[str] = "all", target=None, *, model="efficientnet_lite0",
                    weights: str = "default", size: int = 224, device: str | None = None,
                    with_classviz: bool = False, classviz_steps: int | None = None, ncol: int | None = None,
                    progress: bool = False, **options) -> Comparison:
    """The comparison figure: the photo, then each method as a labelled heatmap overlay, and with
    ``with_classviz`` the engine's class visualization of the same class beside them.

    ``image``: a path or (1, 3, H, W) tensor, resized so its longer side is ``size``. ``options``:
    the method options of :data:`DEFAULTS`. ``progress``: print one line per method (stderr).
    """
    if image is None:
        raise SynthvizError("no image given; pass an image path or a (1, 3, H, W) tensor")
    names = method_names(methods)
    opts = check_options(options)
    m = get_model(model, weights, device)
    photo = _batch(image, size)[:1]
    m.check_size(min(photo.shape[-2:]))
    x = photo.to(m.device)
    with torch.no_grad():
        probs = m(x).softmax(1)[0]
    cls = resolve_targets(m, x, target)[0].item()
    attributions, seconds, lines = {}, {}, []
    for name in names:
        start = time.perf_counter()
        att = attribute(m, x, name, cls, **opts)
        seconds[name] = time.perf_counter() - start
        attributions[name] = att
        line = f"{name}: {seconds[name]:.2f} s"
        if name == "integrated_gradients":
            line += (f", completeness gap {att.info['completeness_gap'][0]:+.4g} "
                     f"({100 * att.info['relative_gap'][0]:.2f}% of f(x) - f(baseline))")
        lines.append(line)
        if progress:
            import sys

            print(line, file=sys.stderr)
    label = m.class_name(cls)
    tiles = [photo.cpu()] + [overlay(photo.cpu(), a.maps.cpu(), a.display) for a in attributions.values()]
    labels = [f"{cls} {label}"[:28] + f" p={probs[cls]:.2f}"] + [LABELS.get(n, n) for n in names]
    viz = None
    if with_classviz:
        from .classviz import classviz

        side = min(photo.shape[-2:])
        result = classviz(cls, model=m, size=side, steps=classviz_steps, seed=opts["seed"], device=device)
        viz = result.images[:1]
        tiles.append(_fit(viz, *photo.shape[-2:]))
        labels.append(f"classviz p={result.info['probability'][0]:.2f}")
    grid = make_grid(torch.cat(tiles), labels, ncol=ncol or len(tiles))
    info = {"cls": cls, "label": label, "probability": float(probs[cls]), "model": m.name, "seconds": seconds,
            "lines": lines, "methods": names}
    return Comparison(grid[None], attributions, photo.cpu(), viz, info)


def save_maps(attributions: dict, out: str | os.PathLike, overwrite: bool = False) -> list:
    """Save each method's maps (B, C, H, W) float32 as ``<out stem>-<method>.npy`` beside ``out``
    (never over an existing file unless ``overwrite``); returns the paths written."""
    import io as _io
    from pathlib import Path

    from ..io import write_file

    out = Path(out)
    paths = []
    for name, att in attributions.items():
        buffer = _io.BytesIO()
        np.save(buffer, att.maps.cpu().float().numpy())
        paths.append(write_file(out.with_name(f"{out.stem}-{name}.npy"), buffer.getvalue(), overwrite))
    return paths
