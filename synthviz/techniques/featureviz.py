"""Feature visualization recipes shared by class visualization and neuron probing.

* ``lucid`` (Olah et al., Distill 2017): Fourier parameterization with decorrelated colour,
  transformation robustness scaled to the image (pad, jitter, random scale 0.8–1.2 and
  rotation ±15°), Adam with a warm-up and a cosine decay of the learning rate.
* ``classic`` (Simonyan 2014; Yosinski 2015): raw pixels, L2 decay, roll jitter, Gaussian
  blur every 4 steps, pixel clipping.
* ``maco`` (Fel et al. 2023): only the phase of a natural amplitude spectrum is learnt; each
  step sees a random crop of the canvas (30-100% of its side) resized back, plus a little noise.
  For transformers and deep models, where the first two give high-frequency noise.

Measured by networks that did not make the images: ``benchmarks/quality.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import render
from ..checks import non_negative, choice, positive
from ..models import Model
from ..objectives import Objective
from ..maco import random_crops
from ..params import make_param
from ..result import Result
from ..regularizers import BlurEvery, l2
from ..transforms import Transform, robust_transforms, roll


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


RECIPES: dict[str, VizRecipe] = {
    # Lucid, with the robustness scaled to the image and a warm-up + cosine learning rate
    "lucid": VizRecipe("fourier", robust_transforms, "adam", 0.05, 256, schedule=warmup_cosine),
    "maco": VizRecipe("maco", lambda size: random_crops(None), "adam", 0.1, 256),
    # pixels, L2 decay, roll jitter, blur every 4 steps. (Yosinski's per-step decay 0.01 with a
    # σ 1 -> 0.5 blur ladder and the Lucid transforms washed the images out to grey: measured worse.)
    "classic": VizRecipe("pixel", lambda size: roll(8), "adam", 0.02, 200, penalty=l2(1e-2),
                         step_ops=lambda steps: [BlurEvery(every=4, sigma=0.5)]),
}


def check_options(steps: int | None = None, lr: float | None = None, batch: int = 1, size: int = 128,
                  recipe: str = "lucid") -> None:
    """The recipe options, checked before a model is even loaded (``None``: the recipe's value;
    0 steps is refused, not taken as "the default")."""
    choice("recipe", recipe, RECIPES)
    positive("steps", steps, integer=True)
    positive("lr", lr)
    positive("batch", batch, integer=True)
    for side in size if isinstance(size, tuple) else (size,):
        positive("size", side, integer=True)


def visualize(model: Model, objective: Objective, *, batch: int = 1, size: int = 128, recipe: str = "lucid",
              steps: int | None = None, lr: float | None = None, seed: int | None = 0, device=None,
              progress: bool | str = False, frame_every: int = 0, snapshots=(), init=None) -> Result:
    """Render ``objective`` with a named recipe (``lucid``, ``classic`` or ``maco``). A model with a fixed
    input size (ViT: 224) renders at that size, whatever ``size`` says (``info["size"]``)."""
    r = RECIPES[choice("recipe", recipe, RECIPES)]
    check_options(None, lr, batch, size)
    non_negative("steps", steps)  # 0 steps from Python: the start image itself (facets shows its starts)
    size = model.input_size or size
    model.check_size(min(size) if isinstance(size, tuple) else size, batch)
    steps = r.steps if steps is None else steps
    side = max(size) if isinstance(size, tuple) else size
    total = objective + r.penalty if r.penalty is not None else objective
    start = {} if init is None else {"init": init}
    result = render(model, total, lambda: make_param(r.param, batch=batch, size=size, **r.param_options, **start),
                    transforms=r.transforms(side), step_ops=r.step_ops(steps), optimizer=r.optimizer,
                    lr=r.lr if lr is None else lr, steps=steps, schedule=r.schedule(steps) if r.schedule else None,
                    seed=seed, device=device, progress=progress, frame_every=frame_every, snapshots=snapshots)
    result.info.update(recipe=recipe, size=list(size) if isinstance(size, tuple) else size)
    return result
