"""Feature visualization recipes shared by class visualization and neuron probing.

* ``lucid`` (Olah et al., Distill 2017): Fourier parameterization with decorrelated colour,
  transformation robustness scaled to the image (pad, jitter, random scale 0.8–1.2 and
  rotation ±15°), Adam with a warm-up and a cosine decay of the learning rate.
* ``classic`` (Simonyan 2014; Yosinski 2015): raw pixels, decay towards grey, Gaussian blur
  every 4 steps (σ 1 → 0.5), pixel clipping, the same transforms and schedule.

Measured by networks that did not make the images: ``benchmarks/quality.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import render
from ..errors import SynthvizError
from ..models import Model
from ..objectives import Objective
from ..params import make_param
from ..result import Result
from ..regularizers import BlurEvery, Decay
from ..transforms import Transform, robust_transforms


def warmup_cosine(steps: int, warmup: float = 0.05, floor: float = 0.05) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up over ``warmup`` of the steps, then a cosine decay to
    ``floor``; the last steps are small, so the noise of the last updates does not stay."""
    w = max(1, round(warmup * steps))

    def fn(step: int) -> float:
        if step < w:
            return (step + 1) / w
        t = (step - w) / max(1, steps - w)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return fn


@dataclass
class VizRecipe:
    """A recipe: parameterization (with options), robustness transforms for an image side,
    optimizer, learning rate and its schedule, steps, an optional penalty and step operations
    (made for the number of steps, so they can follow a schedule)."""

    param: str
    transforms: Callable[[int], Transform]  # size -> transform
    optimizer: str
    lr: float
    steps: int
    penalty: Objective | None = None
    step_ops: Callable[[int], list] = field(default=lambda steps: [])  # steps -> operations
    schedule: Callable[[int], Callable[[int], float]] | None = None  # steps -> lr multiplier
    param_options: dict = field(default_factory=dict)


def _yosinski(steps: int) -> list:
    """Yosinski et al.'s regularisers as step operations: decay towards grey every step, Gaussian
    blur every 4 steps, σ from 1.0 (coarse structure first) down to 0.5 (detail last)."""
    return [Decay(0.01), BlurEvery(every=4, sigma=1.0, sigma_end=0.5, steps=steps)]


RECIPES: dict[str, VizRecipe] = {
    # Lucid, with the robustness scaled to the image and a warm-up + cosine learning rate
    "lucid": VizRecipe("fourier", robust_transforms, "adam", 0.05, 256, schedule=warmup_cosine),
    # pixels, Yosinski's decay and blur, the same robustness transforms and schedule
    "classic": VizRecipe("pixel", robust_transforms, "adam", 0.02, 200, step_ops=_yosinski, schedule=warmup_cosine),
}


def visualize(model: Model, objective: Objective, *, batch: int = 1, size: int = 128, recipe: str = "lucid",
              steps: int | None = None, lr: float | None = None, seed: int | None = 0, device=None,
              progress: bool | str = False, frame_every: int = 0, snapshots=()) -> Result:
    """Render ``objective`` with a named recipe (``lucid`` or ``classic``)."""
    if recipe not in RECIPES:
        raise SynthvizError(f"unknown recipe '{recipe}'; use one of {', '.join(RECIPES)}")
    r = RECIPES[recipe]
    model.check_size(size)
    steps = steps or r.steps
    total = objective + r.penalty if r.penalty is not None else objective
    result = render(model, total, lambda: make_param(r.param, batch=batch, size=size, **r.param_options),
                    transforms=r.transforms(size), step_ops=r.step_ops(steps), optimizer=r.optimizer,
                    lr=lr or r.lr, steps=steps, schedule=r.schedule(steps) if r.schedule else None, seed=seed,
                    device=device, progress=progress, frame_every=frame_every, snapshots=snapshots)
    result.info["recipe"] = recipe
    return result
