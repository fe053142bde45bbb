"""Class visualization: an image the model scores as a class, or as any target of its output."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..checks import choice
from ..errors import BadValue
from ..models import DEFAULT_MODEL, ModelLike, load_model
from ..recipes import as_model_input, check_options, visualize
from ..objectives import class_score, target as target_objective
from ..result import Result
from ..targets import main_output
from .registry import register_technique


@register_technique("classviz", example={"target": "goldfish", "size": 64, "steps": 3})
def classviz(model: ModelLike = DEFAULT_MODEL, target: int | str | list[int | str] | Callable = 285, *,
             weights: str = "default",
             recipe: str = "lucid", size: int = 128, steps: int | None = None, lr: float | None = None,
             batch: int = 1, score: str = "logit", canvas: int | None = None, crops: int | None = None,
             seed: int | None = 0, device: str | None = None, progress: bool | str = False,
             frame_every: int = 0) -> Result:
    """Render what ``model`` sees as class ``target`` (an index or a name such as ``"tabby"``; a list
    of classes renders one image of each in one batch, the recipe acting on each image alone), or
    an image that maximises any target of the output (a :class:`~synthviz.targets.Target` or a callable
    ``output -> (B,)``: a regression value, the similarity to a photo's embedding, a masked class score).

    Args:
        recipe: ``lucid`` (Fourier + decorrelated colour + robustness transforms), ``classic``
            (pixels + L2 decay + jitter + blur + clipping) or ``maco`` (phase only, natural amplitude).
        score: maximise the raw ``logit`` (default, as Simonyan) or the ``logprob`` (class targets).
        batch: render several images of the class at once (different seeds of the same start).
        size: the image side; a model with a fixed input size (ViT: 224) renders at that size.
        crops: views per step, the value averaged over them (None: the recipe's default, 4 for
            ``lucid``, 6 for ``classic``, 1 for ``maco``): random crops of 70–100 % of the area with random flips, or for
            ``maco`` random crops of the canvas. Each view costs one forward/backward pass.
        canvas: ``maco`` only: the side of the canvas rendered (default twice the model's input, at
            most 512 px); the image is the whole canvas, and the values reported are the model's on
            the whole canvas resized to its input.

    Returns a :class:`~synthviz.result.Result`: ``scores`` the final objective per image,
    ``labels`` the class name (or the target's); ``info`` holds the class (``cls``, ``label``: lists
    for a list of classes) and its softmax probability per image, or for any other target its name,
    its value at the start and its final value per image.
    """
    choice("score", score, ("logit", "logprob"))
    check_options(steps, lr, batch, size, recipe, canvas, crops)
    m = load_model(model, weights, device)
    if callable(target):
        result = visualize(m, target_objective(target), batch=batch, size=size, recipe=recipe, steps=steps, lr=lr,
                           seed=seed, device=device, progress=progress, frame_every=frame_every, canvas=canvas,
                           crops=crops)
        with torch.no_grad(), m.evaluating():
            value = target(m(as_model_input(result).to(m.device))).cpu()
        name = getattr(target, "name", "target")
        result.labels = [name] * len(value)
        result.info.update(target=name, value=value.tolist(), model=m.name,
                           start=result.history[0].tolist() if len(result.history) else [])
        return result
    single = not isinstance(target, (list, tuple))
    if not single and (not target or batch != 1):
        raise BadValue("give at least one class" if not target else
                       "a list of classes renders one image of each: drop batch (it renders one class several times)")
    classes = [m.class_index(target)] * batch if single else [m.class_index(t) for t in target]
    objective = class_score(classes[0], score) if single else sum(
        (class_score(c, score, batch=i) for i, c in enumerate(classes)), 0)
    result = visualize(m, objective, batch=len(classes), size=size, recipe=recipe, steps=steps, lr=lr,
                       seed=seed, device=device, progress=progress, frame_every=frame_every, canvas=canvas,
                       crops=crops)
    with torch.no_grad(), m.evaluating():
        probs = main_output(m(as_model_input(result).to(m.device))).softmax(-1)
    probs = probs[torch.arange(len(classes)), classes].cpu()
    names = [m.class_name(c) for c in classes]
    result.labels = [f"class {c} {name}" for c, name in zip(classes, names)]
    result.info.update(cls=classes[0] if single else classes, label=names[0] if single else names, model=m.name,
                       probability=probs.tolist())
    return result
