"""Feature visualization recipes shared by class visualization and neuron probing.

* ``lucid`` (Olah et al., Distill 2017): Fourier parameterization with decorrelated colour,
  transformation robustness (pad, jitter, random scale and rotation), Adam.
* ``classic`` (Simonyan 2014; Yosinski 2015): raw pixels, L2 decay, roll jitter, Gaussian
  blur every few steps, pixel clipping.
* ``maco`` (Fel et al. 2023): only the phase of a natural amplitude spectrum is learnt; each
  step sees a random crop of the canvas (30-100% of its side) resized back, plus a little noise.
  For transformers and deep models, where the first two give high-frequency noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import render
from ..errors import SynthvizError
from ..models import Model
from ..objectives import Objective
from ..maco import random_crops
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
    "maco": VizRecipe("maco", lambda: random_crops(None), "adam", 0.1, 256),
    "classic": VizRecipe("pixel", lambda: roll(8), "adam", 0.02, 200, penalty=l2(1e-2),
                         step_ops=lambda: [BlurEvery(every=4, sigma=0.5)]),
}


def visualize(model: Model, objective: Objective, *, batch: int = 1, size: int = 128, recipe: str = "lucid",
              steps: int | None = None, lr: float | None = None, seed: int | None = 0, device=None,
              progress: bool | str = False, frame_every: int = 0, snapshots=()) -> Result:
    """Render ``objective`` with a named recipe (``lucid``, ``classic`` or ``maco``). A model with a fixed
    input size (ViT: 224) renders at that size, whatever ``size`` says (``info["size"]``)."""
    if recipe not in RECIPES:
        raise SynthvizError(f"unknown recipe '{recipe}'; use one of {', '.join(RECIPES)}")
    r = RECIPES[recipe]
    size = model.input_size or size
    model.check_size(min(size) if isinstance(size, tuple) else size)
    total = objective + r.penalty if r.penalty is not None else objective
    result = render(model, total, lambda: make_param(r.param, batch=batch, size=size),
                    transforms=r.transforms(), step_ops=r.step_ops(), optimizer=r.optimizer,
                    lr=lr or r.lr, steps=steps or r.steps, seed=seed, device=device, progress=progress,
                    frame_every=frame_every, snapshots=snapshots)
    result.info.update(recipe=recipe, size=list(size) if isinstance(size, tuple) else size)
    return result
