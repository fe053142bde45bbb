"""Feature accentuation (Hamblin, Fel et al. 2024): start from a real photo and amplify a feature
while staying close to the photo, so the picture shows what of *this* image drives the feature."""

from __future__ import annotations

import torch

from ..engine import render
from ..errors import SynthvizError
from ..io import make_grid, as_image
from ..layers import LOGITS, capture, check_unit, default_layer
from ..maco import random_crops
from ..models import DEFAULT_MODEL, Model, ModelLike, load_model
from ..objectives import Objective, channel as channel_objective, feature_match, target as target_objective
from ..params import make_param
from ..result import Result
from ..checks import positive
from .common import ImageLike, require
from .registry import register_technique


def _closeness(photo: torch.Tensor) -> Objective:
    """Minus the mean squared pixel distance to the photo (B,)."""
    return Objective(lambda c: -(c.image - photo.to(c.image)).pow(2).flatten(1).mean(1), "pixel closeness")


@register_technique("accentuate", example={"image": "skimage:chelsea", "channel": 3, "size": 32, "steps": 2})
def accentuate(model: ModelLike = DEFAULT_MODEL, image: ImageLike | None = None,
               *, layer: str | None = None, channel: int = 0, target: int | None = None, strength: float = 1.0,
               near: str | None = None, param: str = "fourier", size: int = 128, steps: int = 64,
               lr: float = 0.05, weights: str = "default", seed: int | None = 0, device: str | None = None,
               progress: bool | str = False) -> Result:
    """Amplify ``channel`` of ``layer`` (default: the model's ``mid`` layer; or the logit ``target``)
    in ``image``, staying close to it.

    The objective is ``feature + strength · closeness``: closeness is minus the relative feature
    error at layer ``near`` (``||Φ(x) − Φ(x₀)||² / ||Φ(x₀)||²``), or minus the mean squared pixel
    distance when ``near`` is None. The image starts as the photo (``param``: ``fourier``, ``pixel`` or
    ``maco``, the last keeping the photo's phase under a natural amplitude spectrum); each step sees
    a random crop of 85-100% of it. A model with a fixed input size renders at that size.

    Returns a :class:`~synthviz.result.Result`: ``images`` (1, 3, H, W) the accentuated photo,
    ``figure`` the photo beside it, ``scores`` the feature's final value, ``info`` the feature at the
    start and the end and the pixel distance.
    """
    require(image, "photo to accentuate")
    positive("steps", steps)
    if strength < 0:
        raise SynthvizError(f"strength must be 0 or more, not {strength}")
    m = load_model(model, weights, device)
    side = m.input_size or (size, size)
    photo = as_image(image)
    photo = torch.nn.functional.interpolate(photo, size=side, mode="bilinear", antialias=True,
                                            align_corners=False).clamp(0, 1)
    if target is not None:
        feature = target_objective(lambda out: out[:, int(target)])
        what = f"logit {target}"
    else:
        layer = layer or default_layer(m, "mid")
        check_unit(m, layer, channel, side[0])
        feature = channel_objective(layer, channel)
        what = f"{layer}:{channel}"
    if near is not None:
        ref = capture(m, photo.to(m.device), [near])[near]
        close = feature_match(near, ref)
    else:
        close = _closeness(photo.to(m.device))
    result = render(m, feature + strength * close, lambda: make_param(param, batch=1, size=side, init=photo),
                    transforms=random_crops(None, (0.85, 1.0), noise=0.02), lr=lr, steps=steps, seed=seed,
                    device=device, progress=progress)
    with torch.no_grad():
        layers = [LOGITS if target is not None else layer]
        before, after = (feature(_context(m, x, layers)) for x in (photo.to(m.device), result.images.to(m.device)))
    distance = (result.images - photo.cpu()).pow(2).mean().sqrt().item()
    figure = make_grid(torch.cat([photo.cpu(), result.images]), ["photo", f"accentuated {what}"], ncol=2)
    return Result(result.images, history=result.history, objective=f"accentuate({what})", steps=result.steps,
                  stopped=result.stopped, scores=after.cpu(), labels=[f"accentuated {what}"], figure=figure, technique="accentuate",
                  info={"model": m.name, "feature": what, "strength": strength, "near": near or "pixels",
                        "param": param, "start": before.item(), "end": after.item(), "rms_change": distance})


def _context(m: Model, x: torch.Tensor, layers: list[str]):
    from ..objectives import Context

    return Context(x, capture(m, x, layers, truncate=False))
