"""Feature visualization recipes shared by class visualization and neuron probing.

* ``lucid`` (Olah et al., Distill 2017): Fourier parameterization with decorrelated colour,
  transformation robustness scaled to the image (pad, jitter, random scale 0.8–1.2 and
  rotation ±15°), Adam with a warm-up and a cosine decay of the learning rate.
* ``classic`` (Simonyan 2014; Yosinski 2015): raw pixels, L2 decay, roll jitter, Gaussian
  blur every 4 steps, pixel clipping.
* ``maco`` (Fel et al. 2023): only the phase of a natural amplitude spectrum is learnt, on a
  canvas larger than the model's input (``canvas``; default twice the input, at most 512 px);
  each step the model sees ``crops`` random crops of it (each 30-100 % of the input's side, in
  canvas pixels) resized to its input, plus a little noise. The result is the whole canvas.
  For transformers and deep models, where the first two give high-frequency noise.

Measured by networks that did not make the images: ``benchmarks/quality.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..engine import render
from ..io import resize
from ..checks import non_negative, choice, positive
from ..models import Model
from ..objectives import Objective
from ..errors import BadValue
from ..maco import canvas_size, random_crops
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
    # a canvas recipe renders a canvas (h, w) larger than the model's input (h, w), seen through
    # ``crops`` views per step: (input, canvas, crops) -> transform; None: the image is the input
    views: Callable[[tuple[int, int], tuple[int, int], int], Transform] | None = None


def maco_views(size: tuple[int, int], canvas: tuple[int, int], crops: int) -> Transform:
    """``crops`` random crops per image and step, each side 30-100 % of the model input's side
    (so a canvas twice the input shows the feature at the scale a canvas of the input's size
    would, over four times the area), resized to the input."""
    f = max(size) / max(canvas)
    return random_crops(size, scale=(0.3 * f, f), n=crops)


RECIPES: dict[str, VizRecipe] = {
    # Lucid, with the robustness scaled to the image and a warm-up + cosine learning rate
    "lucid": VizRecipe("fourier", robust_transforms, "adam", 0.05, 256, schedule=warmup_cosine),
    "maco": VizRecipe("maco", lambda size: random_crops(None), "adam", 0.1, 256, views=maco_views),
    # pixels, L2 decay, roll jitter, blur every 4 steps. (Yosinski's per-step decay 0.01 with a
    # σ 1 -> 0.5 blur ladder and the Lucid transforms washed the images out to grey: measured worse.)
    "classic": VizRecipe("pixel", lambda size: roll(8), "adam", 0.02, 200, penalty=l2(1e-2),
                         step_ops=lambda steps: [BlurEvery(every=4, sigma=0.5)]),
}


def check_options(steps: int | None = None, lr: float | None = None, batch: int = 1, size: int = 128,
                  recipe: str = "lucid", canvas: int | None = None, crops: int = 1) -> None:
    """The recipe options, checked before a model is even loaded (``None``: the recipe's value;
    0 steps is refused, not taken as "the default")."""
    choice("recipe", recipe, RECIPES)
    positive("canvas", canvas, integer=True)
    positive("crops", crops, integer=True)
    if RECIPES[recipe].views is None and (canvas is not None or crops != 1):
        raise BadValue(f"canvas and crops are options of the maco recipe, not of {recipe}; add --recipe maco")
    positive("steps", steps, integer=True)
    positive("lr", lr)
    positive("batch", batch, integer=True)
    for side in size if isinstance(size, tuple) else (size,):
        positive("size", side, integer=True)


def visualize(model: Model, objective: Objective, *, batch: int = 1, size: int = 128, recipe: str = "lucid",
              steps: int | None = None, lr: float | None = None, seed: int | None = 0, device=None,
              progress: bool | str = False, frame_every: int = 0, snapshots=(), init=None,
              canvas: int | None = None, crops: int = 1) -> Result:
    """Render ``objective`` with a named recipe (``lucid``, ``classic`` or ``maco``). A model with a fixed
    input size (ViT: 224) renders at that size, whatever ``size`` says (``info["size"]``).

    ``maco`` renders a canvas of ``canvas`` px on its longer side (None: twice the model's input, at most
    512 px; the input's size when starting from ``init``) seen through ``crops`` random crops per step;
    the images are the whole canvas (``info["canvas"]``). Each step costs ``crops`` forward/backward passes."""
    r = RECIPES[choice("recipe", recipe, RECIPES)]
    check_options(None, lr, batch, size, recipe, canvas, crops)
    non_negative("steps", steps)  # 0 steps from Python: the start image itself (facets shows its starts)
    size = model.input_size or size
    model.check_size(min(size) if isinstance(size, tuple) else size, batch)
    steps = r.steps if steps is None else steps
    side = max(size) if isinstance(size, tuple) else size
    total = objective + r.penalty if r.penalty is not None else objective
    start = {} if init is None else {"init": init}
    hw = size if isinstance(size, tuple) else (size, size)
    shape, transforms = hw, r.transforms(side)
    if r.views is not None:
        shape = canvas_size(hw, canvas if init is None or canvas is not None else side)
        transforms = r.views(hw, shape, crops)
    result = render(model, total, lambda: make_param(r.param, batch=batch, size=shape, **r.param_options, **start),
                    transforms=transforms, step_ops=r.step_ops(steps), optimizer=r.optimizer,
                    lr=r.lr if lr is None else lr, steps=steps, schedule=r.schedule(steps) if r.schedule else None,
                    seed=seed, device=device, progress=progress, frame_every=frame_every, snapshots=snapshots)
    result.info.update(recipe=recipe, size=list(size) if isinstance(size, tuple) else size)
    if r.views is not None:
        result.info.update(canvas=list(shape), crops=crops)
    return result


def as_model_input(result: Result) -> torch.Tensor:
    """The rendered images as the model's input: a canvas recipe's canvas resized to ``info["size"]``
    (the whole canvas at the scale of the input), any other render as it is."""
    if "canvas" not in result.info:
        return result.images
    size = result.info["size"]
    return resize(result.images, tuple(size) if isinstance(size, list) else (size, size))
