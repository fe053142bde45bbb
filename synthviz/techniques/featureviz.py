"""Feature visualization recipes shared by class visualization and neuron probing.

* ``lucid`` (Olah et al., Distill 2017): Fourier parameterization with decorrelated colour,
  transformation robustness (pad, jitter, random scale and rotation), Adam.
* ``classic`` (Simonyan 2014; Yosinski 2015): raw pixels, L2 decay, roll jitter, Gaussian
  blur every few steps, pixel clipping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import render
from ..checks import choice, positive
from ..models import Model
from ..objectives import Objective
from ..params import make_param
from ..result import Result
from ..regularizers import BlurEvery, l2
from ..transforms import Transform, roll, standard_transforms


@dataclass
class VizRecipe:
    param: str
    transforms: Callable[[], Transform]
    optimizer: str
    lr: float
    steps: int
    penalty: Objective | None = None
    step_ops: Callable[[], list] = field(default=list)


RECIPES: dict[str, VizRecipe] = {
    "lucid": VizRecipe("fourier", standard_transforms, "adam", 0.05, 256),
    "classic": VizRecipe("pixel", lambda: roll(8), "adam", 0.02, 200, penalty=l2(1e-2),
                         step_ops=lambda: [BlurEvery(every=4, sigma=0.5)]),
}


def check_options(steps: int | None = None, lr: float | None = None, batch: int = 1, size: int = 128,
                  recipe: str = "lucid") -> None:
    """The recipe options, checked before a model is even loaded (``None``: the recipe's value;
    0 steps is refused, not taken as "the default")."""
    choice("recipe", recipe, RECIPES)
    positive("steps", steps, integer=True)
    positive("lr", lr)
    positive("batch", batch, integer=True)
    positive("size", size, integer=True)


def visualize(model: Model, objective: Objective, *, batch: int = 1, size: int = 128, recipe: str = "lucid",
              steps: int | None = None, lr: float | None = None, seed: int | None = 0, device=None,
              progress: bool | str = False, frame_every: int = 0, snapshots=()) -> Result:
    """Render ``objective`` with a named recipe (``lucid`` or ``classic``)."""
    r = RECIPES[choice("recipe", recipe, RECIPES)]
    check_options(steps, lr, batch, size)
    model.check_size(size, batch)
    total = objective + r.penalty if r.penalty is not None else objective
    result = render(model, total, lambda: make_param(r.param, batch=batch, size=size),
                    transforms=r.transforms(), step_ops=r.step_ops(), optimizer=r.optimizer,
                    lr=r.lr if lr is None else lr,
                    steps=r.steps if steps is None else steps, seed=seed, device=device, progress=progress,
                    frame_every=frame_every, snapshots=snapshots)
    result.info["recipe"] = recipe
    return result
