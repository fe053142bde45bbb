"""Class visualization: an image the model scores as a class."""

from __future__ import annotations

from ..engine import RenderResult
from ..objectives import class_score
from . import register_technique
from .common import get_model
from .featureviz import visualize


@register_technique("classviz")
def classviz(target: int | str = 285, *, model="efficientnet_lite0", weights: str = "default",
             recipe: str = "lucid", size: int = 128, steps: int | None = None, lr: float | None = None,
             batch: int = 1, score: str = "logit", seed: int | None = 0, device: str | None = None,
             progress: bool | str = False, frame_every: int = 0) -> RenderResult:
    """Render what ``model`` sees as class ``target`` (an index or a name such as ``"tabby"``).

    Args:
        recipe: ``lucid`` (Fourier + decorrelated colour + robustness transforms) or ``classic``
            (pixels + L2 decay + jitter + blur + clipping).
        score: maximise the raw ``logit`` (default, as Simonyan) or the ``logprob``.
        batch: render several images of the class at once (different seeds of the same start).

    Returns a :class:`~synthviz.engine.RenderResult`; ``info`` holds the class and its final
    softmax probability per image.
    """
    m = get_model(model, weights, device)
    cls = m.class_index(target)
    result = visualize(m, class_score(cls, score), batch=batch, size=size, recipe=recipe, steps=steps, lr=lr,
                       seed=seed, device=device, progress=progress, frame_every=frame_every)
    import torch

    with torch.no_grad():
        probs = m(result.images.to(m.device)).softmax(-1)[:, cls].cpu()
    result.info.update(cls=cls, label=m.class_name(cls), model=m.name, probability=probs.tolist())
    return result
