"""Feature inversion (Mahendran & Vedaldi 2015): reconstruct a photo from its activations at a layer.

Recipe: pixels starting from small noise; maximise ``feature_match`` (minus the relative error
‖Φ(x) − Φ₀‖² / ‖Φ₀‖²) minus an α-norm (α = 6, keeps pixels in range) and a total variation
(β = 2, natural-image smoothness) whose weight grows with the layer's depth, measured by its
stride (input pixels per activation): λ_TV = ``tv_weight`` · stride^1.5. Adam with a cosine
decaying rate. Deeper layers keep less of the photo, so their reconstructions drift from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from kornia.metrics import psnr

from ..engine import render
from ..errors import SynthvizError
from ..io import make_grid, as_image
from ..layers import capture, default_layer
from ..models import DEFAULT_MODEL, ModelLike, load_model
from ..objectives import Context, Objective, feature_match
from ..params import PixelImage
from ..regularizers import alpha_norm, total_variation
from ..result import Result
from .registry import register_technique
from ..checks import non_negative, positive
from ..cost import check_size
from .common import ImageLike, require


def parse_layers(layers: str | Sequence[str] | None) -> list[str]:
    """``"a,b,c"`` or ``["a", "b"]`` -> a list of layer names (empty for ``None``)."""
    if layers is None:
        return []
    names = [s.strip() for s in layers.split(",")] if isinstance(layers, str) else [str(s).strip() for s in layers]
    if not all(names):
        raise SynthvizError(f"cannot read layers '{layers}'; write them like _blocks.1,_blocks.5,_blocks.8")
    return names


def relative_error(act: torch.Tensor, target: torch.Tensor) -> float:
    """‖a − t‖² / ‖t‖² for one image's activations."""
    return float((act - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12))


def _recording(objective: Objective, log: list[float]) -> Objective:
    """The same objective, logging each step's value (the feature error is minus it)."""

    def fn(c: Context) -> torch.Tensor:
        v = objective(c)
        log.append(float(-v.detach()[0]))
        return v

    return Objective(fn, objective.name, objective.layers)


@register_technique("invert", example={"image": "skimage:chelsea", "layer": "_blocks.1", "size": 64, "steps": 3})
def invert(model: ModelLike = DEFAULT_MODEL, image: ImageLike | None = None, *, layer: str | None = None,
           layers: str | Sequence[str] | None = None, weights: str = "default", size: int = 128,
           steps: int = 200, lr: float = 0.05, alpha: float = 6.0, alpha_weight: float = 0.1, beta: float = 2.0,
           tv_weight: float = 0.5, seed: int | None = 0, device: str | None = None, progress: bool | str = False,
           frame_every: int = 0) -> Result:
    """Reconstruct ``image`` from its activations at ``layer`` (or at each of ``layers``).

    Args:
        model: a model name or a loaded :class:`Model`.
        image: a path or a (1, 3, H, W) tensor in [0, 1]; resized so its longer side is ``size``.
        layer: the layer to invert (default: the model's ``mid`` layer).
        layers: several layers, ``"a,b,c"`` or a list: one reconstruction each, shallow to deep
            as given; ``figure`` shows them in one row after the original.
        alpha, alpha_weight: the α-norm prior (mean |x − 0.5|^α) and its weight.
        beta, tv_weight: the total variation exponent and base weight (× stride^1.5).

    Returns:
        A :class:`~synthviz.result.Result` with one reconstruction per layer in ``images``
        (L, 3, h, w), labelled by layer, ``history`` (T, L) and ``figure`` (3, H, W) the original
        then each reconstruction. ``info`` holds per layer (lists, in order): ``layers``,
        ``feature_error`` (final relative feature error), ``psnr`` (dB against the resized
        original), ``feature_errors`` (the relative feature error at every step), ``tv_weights``;
        plus ``report``. ``extras["original"]`` is the resized original (1, 3, h, w).
    """
    for name, v in (("size", size), ("steps", steps)):
        positive(name, v, integer=True)
    for name, v in (("lr", lr), ("alpha", alpha)):
        positive(name, v)
    for name, v in (("alpha_weight", alpha_weight), ("tv_weight", tv_weight), ("beta", beta)):
        non_negative(name, v)
    if layer is not None and layers is not None:
        raise SynthvizError("give layer or layers, not both")
    m = load_model(model, weights, device)
    names = parse_layers(layers) or [layer or default_layer(m, "mid")]
    x0 = as_image(require(image, "image"), size).to(m.device)
    check_size(m, min(x0.shape[-2:]))
    h, w = x0.shape[-2:]
    cosine = lambda s: 0.1 + 0.45 * (1 + math.cos(math.pi * s / steps))  # noqa: E731 - lr from 1x down to 0.1x

    results, errors, psnrs, logs, tvs = [], [], [], [], []
    for i, name in enumerate(names):
        target = capture(m, x0, [name])[name]
        stride = max(h, w) / (max(target.shape[-2:]) if target.dim() == 4 else 1)  # a vector: the whole image
        tvs.append(tv_weight * stride ** 1.5)
        log: list[float] = []
        objective = _recording(feature_match(name, target), log) + alpha_norm(alpha_weight, alpha) \
            + total_variation(tvs[-1], beta)
        label = f"invert {name}" + (f" ({i + 1}/{len(names)})" if len(names) > 1 else "")
        r = render(m, objective, lambda: PixelImage(1, h, w, sd=0.05), optimizer="adam", lr=lr, steps=steps,
                   schedule=cosine, seed=seed, progress=label if progress else False, frame_every=frame_every)
        out = r.images.to(m.device)
        errors.append(relative_error(capture(m, out, [name])[name], target))
        psnrs.append(float(psnr(out, x0, 1.0)))
        logs.append(log[: len(r.history)])
        results.append(r)

    result = Result.concat(results, f"inversions of {', '.join(names)}" if len(results) > 1 else None)
    labels = ["original"] + [f"{n} {p:.1f}dB" for n, p in zip(names, psnrs)]
    grid = make_grid(torch.cat([x0.cpu(), result.images]), labels, ncol=len(names) + 1)
    report = "; ".join(f"{n}: relative feature error {e:.3g}, PSNR {p:.1f} dB" for n, e, p in zip(names, errors, psnrs))
    result.info.update(model=m.name, layers=names, feature_error=errors, psnr=psnrs, feature_errors=logs,
                       tv_weights=tvs, report=report)
    result.figure, result.extras, result.labels = grid, {"original": x0.cpu()}, labels[1:]
    result.scores = torch.tensor([-e for e in errors])
    return result
