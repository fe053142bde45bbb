"""Feature visualization recipes shared by class visualization, neuron probing, the dataset's unit
pages and facets: :func:`visualize` renders an objective with a named recipe through the engine.

* ``lucid`` (Olah et al., Distill 2017): Fourier parameterization with decorrelated colour,
  transformation robustness scaled to the image (pad, jitter, random scale 0.8–1.2 and
  rotation ±15°), Adam with a warm-up and a cosine decay of the learning rate. A class
  visualization sees each step through 4 random crops (70–100 % of the area, flipped at random),
  its value averaged over them (``crops``): the class then survives the crops and flips a viewer
  (or another network) sees it through.
* ``classic`` (Simonyan 2014; Yosinski 2015): raw pixels, L2 decay, Gaussian blur every 4
  steps, pixel clipping, with lucid's transformation robustness and learning-rate schedule;
  class renders through 6 crop views per step.
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

from .checks import choice, non_negative, positive
from .cost import check_canvas, check_size
from .engine import render
from .errors import BadValue
from .io import resize
from .maco import canvas_size, random_crops
from .models import Model
from .objectives import Objective
from .params import make_param
from .regularizers import BlurEvery, l2
from .result import Result
from .transforms import Transform, compose, robust_transforms


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
    # views per step a class visualization takes by default (see ``crops`` in :func:`visualize`)
    class_crops: int = 1


def maco_views(size: tuple[int, int], canvas: tuple[int, int], crops: int) -> Transform:
    """``crops`` random crops per image and step, each side 30-100 % of the model input's side
    (so a canvas twice the input shows the feature at the scale a canvas of the input's size
    would, over four times the area), resized to the input."""
    f = max(size) / max(canvas)
    return random_crops(size, scale=(0.3 * f, f), n=crops)


def crop_views(size: tuple[int, int], n: int, area: tuple[float, float] = (0.7, 1.0)) -> Transform:
    """``n`` random crops of each image (``area`` of it, its aspect kept), resized to ``size`` (h, w)
    and flipped left-right at random: (B, 3, H, W) -> (n·B, 3, h, w), view-major (the engine
    averages each image's value over its views)."""
    crops = random_crops(size, scale=(area[0] ** 0.5, area[1] ** 0.5), noise=0.0, n=n)

    def fn(x: torch.Tensor) -> torch.Tensor:
        v = crops(x)
        flip = torch.rand(len(v), 1, 1, 1, device=v.device) < 0.5
        return torch.where(flip, v.flip(-1), v)

    return fn


RECIPES: dict[str, VizRecipe] = {
    # Lucid, with the robustness scaled to the image and a warm-up + cosine learning rate; class
    # renders seen through 4 crops + flips per step (benchmarks/quality.py, 224 px, top-5 under
    # Lite1 / Lite2: 100 / 100 % since 0.4 fed the embedded model its own preprocessing)
    "lucid": VizRecipe("fourier", robust_transforms, "adam", 0.05, 256, schedule=warmup_cosine, class_crops=4),
    "maco": VizRecipe("maco", lambda size: random_crops(None), "adam", 0.1, 256, views=maco_views),
    # pixels, L2 decay, Yosinski's blur (σ 1 every 4 steps), with lucid's scaled transformation
    # robustness and learning-rate schedule (roll jitter and σ 0.5 left whole classes unrecognised
    # by other networks); class renders through 6 crops + flips per step (benchmarks/quality.py:
    # Lite1 / Lite2 top-5 100 / 96 %; see the README's Quality table).
    "classic": VizRecipe("pixel", robust_transforms, "adam", 0.05, 200, penalty=l2(1e-2), schedule=warmup_cosine,
                         step_ops=lambda steps: [BlurEvery(every=4, sigma=1.0)], class_crops=6),
}


def check_options(steps: int | None = None, lr: float | None = None, batch: int = 1, size: int = 128,
                  recipe: str = "lucid", canvas: int | None = None, crops: int | None = 1) -> None:
    """The recipe options, checked before a model is even loaded (``None``: the recipe's value;
    0 steps is refused, not taken as "the default")."""
    choice("recipe", recipe, RECIPES)
    positive("canvas", canvas, integer=True)
    positive("crops", crops, integer=True)
    if RECIPES[recipe].views is None and canvas is not None:
        raise BadValue(f"canvas is an option of the maco recipe, not of {recipe}; add --recipe maco")
    positive("steps", steps, integer=True)
    positive("lr", lr)
    positive("batch", batch, integer=True)
    for side in size if isinstance(size, tuple) else (size,):
        positive("size", side, integer=True)


def visualize(model: Model, objective: Objective, *, batch: int = 1, size: int = 128, recipe: str = "lucid",
              steps: int | None = None, lr: float | None = None, seed: int | None = 0, device=None,
              progress: bool | str = False, frame_every: int = 0, snapshots=(), init=None,
              canvas: int | None = None, crops: int | None = 1, param_options: dict | None = None) -> Result:
    """Render ``objective`` with a named recipe (``lucid``, ``classic`` or ``maco``). A model with a fixed
    input size (ViT: 224) renders at that size, whatever ``size`` says (``info["size"]``).

    ``maco`` renders a canvas of ``canvas`` px on its longer side (None: twice the model's input, at most
    512 px; the input's size when starting from ``init``) seen through ``crops`` random crops per step;
    the images are the whole canvas (``info["canvas"]``). With the other recipes ``crops`` > 1 views
    each image through that many random crops (70–100 % of the area) with random flips per step
    (:func:`crop_views`) and maximises the mean; None: the recipe's ``class_crops``. Each step costs
    ``crops`` forward/backward passes. ``param_options`` override the recipe's options of its
    parameterization (e.g. ``{"decay": 1.5}``: a Fourier spectrum falling as 1/f^1.5)."""
    r = RECIPES[choice("recipe", recipe, RECIPES)]
    check_options(None, lr, batch, size, recipe, canvas, crops)
    crops = r.class_crops if crops is None else crops
    non_negative("steps", steps)  # 0 steps from Python: the start image itself (facets shows its starts)
    size = model.input_size or size
    check_size(model, size, batch)
    steps = r.steps if steps is None else steps
    side = max(size) if isinstance(size, tuple) else size
    total = objective + r.penalty if r.penalty is not None else objective
    start = {} if init is None else {"init": init}
    hw = size if isinstance(size, tuple) else (size, size)
    shape, transforms = hw, r.transforms(side)
    if r.views is not None:
        shape = canvas_size(hw, canvas if init is None or canvas is not None else side)
        check_canvas(shape, batch, crops, model.device)  # the canvas, not the model's input, sets the memory
        transforms = r.views(hw, shape, crops)
    elif crops > 1:
        transforms = compose(transforms, crop_views(hw, crops))
    options = {**r.param_options, **(param_options or {}), **start}
    result = render(model, total, lambda: make_param(r.param, batch=batch, size=shape, **options),
                    transforms=transforms, step_ops=r.step_ops(steps), optimizer=r.optimizer,
                    lr=r.lr if lr is None else lr, steps=steps, schedule=r.schedule(steps) if r.schedule else None,
                    seed=seed, device=device, progress=progress, frame_every=frame_every, snapshots=snapshots)
    result.info.update(recipe=recipe, size=list(size) if isinstance(size, tuple) else size)
    if r.views is not None:
        result.info.update(canvas=list(shape))
    result.info.update(crops=crops)
    return result


def as_model_input(result: Result) -> torch.Tensor:
    """The rendered images as the model's input: a canvas recipe's canvas resized to ``info["size"]``
    (the whole canvas at the scale of the input), any other render as it is."""
    if "canvas" not in result.info:
        return result.images
    size = result.info["size"]
    return resize(result.images, tuple(size) if isinstance(size, list) else (size, size))
