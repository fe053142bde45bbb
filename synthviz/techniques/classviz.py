"""Class visualization: an image the model scores as a class."""

from __future__ import annotations

import torch

from ..checks import choice
from ..models import DEFAULT_MODEL, ModelLike
from ..objectives import class_score
from ..result import Result
from .registry import register_technique
from .common import get_model
from .featureviz import check_options, visualize


@register_technique("classviz", example={"target": "goldfish", "size": 64, "steps": 3})
def classviz(model: ModelLike = DEFAULT_MODEL, target: int | str = 285, *, weights: str = "default",
             recipe: str = "lucid", size: int = 128, steps: int | None = None, lr: float | None = None,
             batch: int = 1, score: str = "logit", seed: int | None = 0, device: str | None = None,
             progress: bool | str = False, frame_every: int = 0) -> Result:
    """Render what ``model`` sees as class ``target`` (an index or a name such as ``"tabby"``).

    Args:
        recipe: ``lucid`` (Fourier + decorrelated colour + robustness transforms) or ``classic``
            (pixels + L2 decay + jitter + blur + clipping).
        score: maximise the raw ``logit`` (default, as Simonyan) or the ``logprob``.
        batch: render several images of the class at once (different seeds of the same start).

    Returns a :class:`~synthviz.result.Result`: ``scores`` the final objective per image,
    ``labels`` the class name; ``info`` holds the class and its softmax probability per image.
    """
    choice("score", score, ("logit", "logprob"))
    check_options(steps, lr, batch, size, recipe)
    m = get_model(model, weights, device)
    cls = m.class_index(target)
    result = visualize(m, class_score(cls, score), batch=batch, size=size, recipe=recipe, steps=steps, lr=lr,
                       seed=seed, device=device, progress=progress, frame_every=frame_every)
    with torch.no_grad(), m.evaluating():
        probs = m(result.images.to(m.device)).softmax(-1)[:, cls].cpu()
    result.labels = [f"class {cls} {m.class_name(cls)}"] * len(probs)
    result.info.update(cls=cls, label=m.class_name(cls), model=m.name, probability=probs.tolist())
    return result
