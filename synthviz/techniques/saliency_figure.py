"""The saliency comparison figure: the photo, then each method's map as a labelled heatmap overlay,
optionally beside the engine's class visualization of the same class. Captions come from the
attribution registry, so a new method appears here by being registered."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import torch

from ..attribution import (Attribution, attribute, check_options, method_info, method_names, option_defaults,
                           resolve_targets)
from ..cost import check_size
from ..engine import RenderInterrupted
from ..checks import positive
from ..errors import SynthvizError
from ..io import as_image, make_grid, resize
from ..models import DEFAULT_MODEL, Model, load_model
from ..overlay import overlay
from ..result import Result
from ..targets import Target, main_output
from .registry import register_technique


def _fit(image: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(1, 3, h', w') scaled to fit inside h x w and padded with white to exactly h x w."""
    scale = min(h / image.shape[-2], w / image.shape[-1])
    fitted = resize(image, (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale))))
    out = torch.ones(1, 3, h, w)
    top, left = (h - fitted.shape[-2]) // 2, (w - fitted.shape[-1]) // 2
    out[..., top:top + fitted.shape[-2], left:left + fitted.shape[-1]] = fitted
    return out


def explain(model: Model, x: torch.Tensor, names: Sequence[str], target, options: dict,
            progress: bool = False, skip: bool = False) -> tuple[dict[str, Attribution], dict[str, float], list[str]]:
    """Every method on the batch ``x`` (B, 3, H, W) for the same targets: ({method: Attribution},
    {method: seconds}, report lines). ``target``: as for :func:`~synthviz.attribution.attribute`.
    ``skip`` (``all``): a method that cannot apply to this model or target (its one-line error) is
    left out with a note (``cam: skipped (...)``); when none applies, the first error is raised."""
    attributions, seconds, lines, first = {}, {}, [], None
    for name in names:
        start = time.perf_counter()
        try:
            att = attribute(model, x, name, target, **options)
        except KeyboardInterrupt:  # Ctrl-C: the finished methods go to the caller
            raise _Partial(attributions, seconds, lines) from None
        except SynthvizError as e:
            if not skip:
                raise
            first = first or e
            lines.append(f"{name}: skipped ({e})")
            if progress:
                print(lines[-1], file=sys.stderr)
            continue
        seconds[name] = time.perf_counter() - start
        attributions[name] = att
        line = f"{name}: {seconds[name]:.2f} s"
        if "relative_gap" in att.info:
            line += (f", completeness gap {att.info['completeness_gap'][0]:+.4g} "
                     f"({100 * att.info['relative_gap'][0]:.2f}% of f(x) - f(baseline))")
        lines.append(line)
        if progress:
            print(line, file=sys.stderr)
    if first is not None and not attributions:
        raise first
    return attributions, seconds, lines


class _Partial(KeyboardInterrupt):
    """Ctrl-C inside :func:`explain`, carrying the methods that finished."""

    def __init__(self, attributions, seconds, lines):
        super().__init__("interrupted")
        self.done = (attributions, seconds, lines)


def comparison(photo: torch.Tensor, attributions: dict[str, Attribution], caption: str,
               extra: list[tuple[torch.Tensor, str]] = (), ncol: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The labelled figure (3, H', W') of one photo (1, 3, H, W) and its overlays (M, 3, H, W)."""
    heat = torch.cat([overlay(photo, a.maps.cpu(), a.display) for a in attributions.values()])
    tiles = [photo, heat] + [_fit(img, *photo.shape[-2:]) for img, _ in extra]
    labels = [caption] + [method_info(n).label for n in attributions] + [label for _, label in extra]
    grid = make_grid(torch.cat(tiles), labels, ncol=ncol or len(labels))
    return grid, heat


@register_technique("saliency_figure", example={"image": "skimage:chelsea", "methods": "gradient,gradcam", "size": 64},
                    options=option_defaults)
def saliency_figure(model: str | Model | torch.nn.Module = DEFAULT_MODEL, image=None, *,
                    methods: str | Sequence[str] = "all", target: int | str | None = None,
                    weights: str = "default", size: int = 224, device: str | None = None,
                    with_classviz: bool = False, classviz_steps: int | None = None, ncol: int | None = None,
                    progress: bool = False, **options) -> Result:
    """The comparison figure: the photo, then each method as a labelled heatmap overlay, and with
    ``with_classviz`` the engine's class visualization of the same class beside them.

    ``image``: a path or (1, 3, H, W) tensor, resized so its longer side is ``size``. ``options``:
    the methods' options (see ``synthviz.attribution.option_defaults()``). Returns a Result:
    ``figure`` the labelled figure, ``images`` the overlays (one per method), ``labels`` the
    methods' captions; ``info`` the class, its probability, seconds per method, report lines.
    """
    return figure_and_maps(model, image, methods, target, weights=weights, size=size, device=device,
                           with_classviz=with_classviz, classviz_steps=classviz_steps, ncol=ncol,
                           progress=progress, options=options)[0]


def figure_and_maps(model, image, methods="all", target=None, *, weights: str = "default", size: int = 224,
                    device: str | None = None, with_classviz: bool = False, classviz_steps: int | None = None,
                    ncol: int | None = None, progress: bool = False,
                    options: dict | None = None) -> tuple[Result, dict[str, Attribution]]:
    """:func:`saliency_figure`'s Result and the :class:`Attribution` of every method (for saving maps)."""
    if image is None:
        raise SynthvizError("no image given; pass an image path or a (1, 3, H, W) tensor")
    names = method_names(methods)
    opts = check_options(options or {})
    if classviz_steps is not None:  # refused even without with_classviz: a bad value is never ignored silently
        positive("classviz_steps", classviz_steps, integer=True)
    photo = as_image(image, size, batch=True)[:1]  # a bad image or size fails before the model loads
    m = load_model(model, weights, device)
    check_size(m, min(photo.shape[-2:]))
    x = photo.to(m.device)
    resolved = resolve_targets(m, x, target)
    if not resolved.is_class:  # any target of the output: no class, no probability
        return _any_target(m, photo, names, resolved, opts, progress, ncol, with_classviz, classviz_steps, device,
                           skip=methods in (None, "all"))
    with torch.no_grad():
        probs = main_output(m(x)).softmax(1)[0]
    cls = resolved.tolist()[0]
    interrupted = False
    try:
        attributions, seconds, lines = explain(m, x, names, cls, opts, progress, skip=methods in (None, "all"))
    except _Partial as stop:  # keep the finished methods: a figure of them, then the interrupt
        (attributions, seconds, lines), interrupted = stop.done, True
        if not attributions:
            raise KeyboardInterrupt from None
    names = list(attributions)  # the methods that ran (``all`` leaves out those that cannot apply)
    label = m.class_name(cls)
    extra, info = [], {}
    if with_classviz and not interrupted:
        from .classviz import classviz

        viz = classviz(model=m, target=cls, size=min(photo.shape[-2:]), steps=classviz_steps,
                       seed=opts.get("seed", 0), device=device)
        extra.append((viz.images[:1], f"classviz p={viz.info['probability'][0]:.2f}"))
        info["classviz_probability"] = viz.info["probability"][0]
    caption = f"{cls} {label}"[:28] + f" p={probs[cls]:.2f}"
    grid, heat = comparison(photo.cpu(), attributions, caption, extra, ncol)
    info.update(cls=cls, label=label, probability=float(probs[cls]), model=m.name, seconds=seconds, lines=lines,
                methods=names, layers={n: a.info["layer"] for n, a in attributions.items() if "layer" in a.info})
    result = Result(images=heat, labels=[method_info(n).label for n in names], figure=grid, info=info,
                    objective="saliency", technique="saliency_figure", stopped="interrupted" if interrupted else None)
    if interrupted:
        raise RenderInterrupted(result, attributions)
    return result, attributions


def _any_target(m: Model, photo, names, target: Target, opts, progress, ncol, with_classviz, classviz_steps,
                device, skip: bool = False) -> tuple[Result, dict[str, Attribution]]:
    """The figure for a target that is not one class: the caption names it with its value."""
    x = photo.to(m.device)
    with torch.no_grad():
        value = float(target(m(x))[0])
    attributions, seconds, lines = explain(m, x, names, target, opts, progress, skip)
    names = list(attributions)
    extra, info = [], {}
    if with_classviz:
        from .classviz import classviz

        viz = classviz(Target(target.fn, target.name, per_image=target.per_image), model=m,
                       size=min(photo.shape[-2:]), steps=classviz_steps, seed=opts.get("seed", 0), device=device)
        extra.append((viz.images[:1], f"synthesis {viz.info['value'][0]:.3g}"))
        info["classviz_value"] = viz.info["value"][0]
    grid, heat = comparison(photo.cpu(), attributions, f"{target.name}"[:26] + f" {value:.3g}", extra, ncol)
    info.update(target=target.name, value=value, model=m.name, seconds=seconds, lines=lines, methods=names,
                layers={n: a.info["layer"] for n, a in attributions.items() if "layer" in a.info})
    return Result(images=heat, labels=[method_info(n).label for n in names], figure=grid, info=info,
                  objective="saliency", technique="saliency_figure"), attributions


def save_maps(attributions: dict, out, overwrite: bool = False) -> list:
    """Save each method's maps (B, C, H, W) float32 as ``<out stem>-<method>.npy`` beside ``out``
    (never over an existing file unless ``overwrite``); returns the paths written."""
    import io as _io
    from pathlib import Path

    import numpy as np

    from ..io import write_file

    out = Path(out)
    paths = []
    for name, att in attributions.items():
        buffer = _io.BytesIO()
        np.save(buffer, att.maps.cpu().float().numpy())
        paths.append(write_file(out.with_name(f"{out.stem}-{name}.npy"), buffer.getvalue(), overwrite))
    return paths
