"""The coarse-to-fine ladder: render small, upsample the result, continue at the next scale."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..device import seeded
from ..engine import render
from ..errors import SynthvizError
from ..io import resize
from ..models import Model
from ..objectives import Objective
from ..params import ImageParam, make_param
from ..result import Result
from .options import MIN_SIDE
from .prints import ParameterAverage
from .stats import score


def periodic_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a tileable image so it stays tileable: interpolate a wrapped copy, keep the middle."""
    h, w = image.shape[-2:]
    p = 4
    wrapped = F.pad(image, (p, p, p, p), mode="circular")
    k = (size[0] / h, size[1] / w)
    big = F.interpolate(wrapped, size=(round((h + 2 * p) * k[0]), round((w + 2 * p) * k[1])), mode="bicubic",
                        align_corners=False)
    top, left = round(p * k[0]), round(p * k[1])
    return big[..., top : top + size[0], left : left + size[1]].clamp(0, 1)


def _kind(param: ImageParam) -> str:
    from ..params import FourierImage

    return "fourier" if isinstance(param, FourierImage) else "pixel"


def ladder_sizes(h: int, w: int, scales: int | None = None, start: int = 128, factor: float = 2.0) -> list[tuple[int, int]]:
    """Sizes from coarse to fine, each ``factor`` smaller than the next, ending at (h, w).
    ``scales=None``: as many as keep the coarsest longer side at ``start`` px or more (and its
    shorter side at ``MIN_SIDE``)."""
    def sizes_for(n: int) -> list[tuple[int, int]]:
        return [(round(h / factor ** k), round(w / factor ** k)) for k in reversed(range(n))]

    if scales is None:
        scales = 1 + max(0, int(math.floor(math.log(max(h, w) / start, factor) + 1e-9)))
        while scales > 1 and min(sizes_for(scales)[0]) < MIN_SIDE:
            scales -= 1
    if scales < 1:
        raise SynthvizError(f"scales must be 1 or more, not {scales}")
    sizes = sizes_for(scales)
    if min(sizes[0]) < MIN_SIDE:
        raise SynthvizError(f"{scales} scales make the coarsest image {sizes[0][1]}x{sizes[0][0]} px, too small; "
                            f"use fewer --scales or a larger --size")
    return sizes


def scale_steps(steps: int, count: int) -> list[int]:
    """Steps per scale: ``steps`` at the coarsest (cheap), half as many at each finer one, which
    starts from the upsampled result (Gatys' ladder: 1000 then 500)."""
    return [steps] + [max(1, steps // 2)] * (count - 1)


def run_ladder(model: Model, sizes: Sequence[tuple[int, int]], objective_at: Callable[[int, int], Objective],
               start: Callable[[int, int], ImageParam], *, steps: Sequence[int], optimizer: str, lr: float,
               transforms_at: Callable[[int, int], Callable] | None = None, periodic: bool = False,
               seed: int | None = 0, device=None, progress: bool | str = False, frame_every: int = 0,
               label: str = "render", measure_at: Callable[[int, int], Objective] | None = None,
               average: float = 0.0) -> Result:
    """Render at each size in turn, each scale starting from the previous result upsampled
    (``param.resized``; a periodic resize for tileable images). Returns the last scale's result
    with ``history`` and ``frames`` of all scales (frames resized to the final size) and
    ``info["scales"]``: per scale its size, steps and ``measure_at(h, w)`` (default the objective)
    at the start and the end. ``average``: the last scale's result is the moving average of its
    iterates with this decay per step (:class:`~synthviz.painting.prints.ParameterAverage`)."""
    result: Result | None = None
    frames, history, per_scale = [], [], []
    for i, (h, w) in enumerate(sizes):
        objective = objective_at(h, w)
        with seeded(seed):
            if result is None:
                param = start(h, w)
            elif periodic:
                param = make_param(_kind(result.param), 1, (h, w), init=periodic_resize(result.param.image(), (h, w)))
            else:
                param = result.param.resized(h, w)
            if result is not None:
                param.grey = result.param.grey  # a grey texture stays grey at every scale
        param = param.to(model.device)
        tag = f"{label} {w}x{h}" + (f" ({i + 1}/{len(sizes)})" if len(sizes) > 1 else "")
        measure = measure_at(h, w) if measure_at else objective
        before = score(model, measure, param.image())
        result = render(model, objective, param, transforms=transforms_at(h, w) if transforms_at else None,
                        optimizer=optimizer, lr=lr, steps=steps[i],
                        step_ops=[ParameterAverage(average, steps[i] - 1)] if average and i == len(sizes) - 1 else (),
                        seed=None if seed is None else seed + i, device=device,
                        progress=tag if progress else False, frame_every=frame_every)
        after = score(model, measure, result.images)
        per_scale.append({"size": (h, w), "steps": result.steps, "start": before, "end": after})
        frames += result.frames
        history.append(result.history)
        if result.stopped == "nan":
            break
    assert result is not None
    final = sizes[-1]
    result.frames = [f if tuple(f.shape[-2:]) == final else resize(f, final) for f in frames]
    result.history = torch.cat([hst for hst in history if len(hst)]) if any(len(hst) for hst in history) else result.history
    result.info["scales"] = per_scale
    return result
