"""Gradient family: vanilla gradient (Simonyan 2014), SmoothGrad (Smilkov 2017), gradient × input
and integrated gradients (Sundararajan 2017)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SynthvizError, did_you_mean
from ..models import Model
from .core import REDUCTIONS, Attribution, chunks, input_gradient, make_baseline, scores_of
from .registry import METHODS, call_method, method_names, register_method


@register_method("gradient", label="gradient", family="gradient", cost="1 forward + 1 backward",
                 aliases=("vanilla", "saliency"), lazy_target=True)
def gradient(model: Model, x: torch.Tensor, targets: torch.Tensor) -> Attribution:
    """Vanilla gradient: max over colour of |∂score/∂x|; raw = the signed gradient."""
    grad, scores = input_gradient(model, x, targets)
    return Attribution(REDUCTIONS["max"](grad), grad, reduction="max", scores=scores)


@register_method("smoothgrad", label="SmoothGrad", family="gradient", cost="samples × the base method",
                 aliases=("smooth_grad",))
def smoothgrad(model: Model, x: torch.Tensor, targets: torch.Tensor, base: str = "gradient", samples: int = 25,
               noise: float = 0.15, squared: bool = False, seed: int | None = 0, batch_size: int = 16,
               _options: dict | None = None) -> Attribution:
    """Mean of ``base``'s maps (or of their squares) over ``samples`` copies of each image with
    Gaussian noise of σ = ``noise`` × (max − min) of that image.

    For pixel-space bases the signed per-colour maps (``raw``) are averaged, then reduced over colour
    as the base does (as in the SmoothGrad paper: noise in the sign averages out); CAM and
    perturbation maps are averaged as they are."""
    base = method_names(base)[0]
    if base == "smoothgrad":
        raise SynthvizError("smoothgrad cannot smooth itself; use --base gradient, guided_backprop, gradcam...")
    if int(samples) < 1:
        raise SynthvizError(f"samples must be at least 1, not {samples}")
    if noise < 0:
        raise SynthvizError(f"noise must be 0 or more, not {noise}")
    n = int(samples)
    sigma = noise * (x.flatten(1).amax(1) - x.flatten(1).amin(1))
    gen = torch.Generator(device=x.device)
    gen.manual_seed(0 if seed is None else int(seed))
    options = {k: v for k, v in (_options or {}).items() if k not in ("samples", "base")}
    options["batch_size"] = batch_size
    # copies per call of the base: about batch_size images per forward, except for methods that
    # batch their own forwards (they take batch_size), called one copy at a time
    per_call = 1 if "batch_size" in METHODS.get(base).defaults else max(1, batch_size // len(x))
    maps_sum = raw_sum = None
    done = 0
    while done < n:
        k = min(per_call, n - done)
        xs = x.repeat(k, 1, 1, 1)
        eps = torch.randn(xs.shape, generator=gen, device=x.device)
        noisy = xs + sigma.repeat(k).view(-1, 1, 1, 1) * eps
        att = call_method(base, model, noisy, targets.repeat(k), options)
        reduction = att.reduction
        m = att.raw if reduction else att.maps
        m = m.view(k, len(x), *m.shape[1:])
        r = att.raw.view(k, len(x), *att.raw.shape[1:])
        m, r = (m ** 2, r ** 2) if squared else (m, r)
        maps_sum = m.sum(0) if maps_sum is None else maps_sum + m.sum(0)
        raw_sum = r.sum(0) if raw_sum is None else raw_sum + r.sum(0)
        done += k
    maps = REDUCTIONS[reduction](maps_sum / n) if reduction else maps_sum / n
    info = {"base": base, "samples": n, "noise": noise, "squared": bool(squared)}
    return Attribution(maps, raw_sum / n, display=att.display, info=info, reduction=reduction)


@register_method("grad_x_input", label="grad x input", family="gradient", cost="1 forward + 1 backward",
                 aliases=("gxi", "input_x_gradient"), lazy_target=True)
def grad_x_input(model: Model, x: torch.Tensor, targets: torch.Tensor) -> Attribution:
    """Gradient × input, summed over colour (signed)."""
    grad, scores = input_gradient(model, x, targets)
    raw = grad * x
    return Attribution(REDUCTIONS["sum"](raw), raw, reduction="sum", scores=scores)


def ig_nodes(steps: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Path positions α in (0, 1) and their weights (summing to 1) for ``steps`` points."""
    if rule in ("riemann", "midpoint"):
        return (torch.arange(steps, dtype=torch.float64) + 0.5) / steps, torch.full((steps,), 1.0 / steps,
                                                                                     dtype=torch.float64)
    if rule in ("gauss-legendre", "gauss_legendre", "gausslegendre", "gl"):
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return torch.from_numpy((nodes + 1) / 2), torch.from_numpy(weights / 2)
    raise SynthvizError(f"unknown rule '{rule}'{did_you_mean(rule, ['riemann', 'gauss-legendre'])}; "
                        "use riemann or gauss-legendre")


@register_method("integrated_gradients", label="integrated grad.", family="gradient",
                 cost="steps × (forward + backward) + 2 forwards", aliases=("ig", "integrated"))
def integrated_gradients(model: Model, x: torch.Tensor, targets: torch.Tensor, steps: int = 64,
                         baseline: str | torch.Tensor = "black", rule: str = "gauss-legendre",
                         batch_size: int = 16) -> Attribution:
    """(x − x′) × the weighted mean of ∇score along the straight path from the baseline x′ to x.

    Sum over colour (signed). ``info``: ``completeness_gap`` (Σ attributions − (f(x) − f(x′))),
    ``relative_gap`` (|gap| / |f(x) − f(x′)|) and ``delta`` (f(x) − f(x′)), one per image.
    """
    if int(steps) < 1:
        raise SynthvizError(f"steps must be at least 1, not {steps}")
    alphas, weights = ig_nodes(int(steps), rule)
    base = make_baseline(baseline, x)
    b, n = len(x), len(alphas)
    total = torch.zeros_like(x)
    # all (image, node) pairs in chunks of batch_size: the batch the network sees stays full
    pair_img = torch.arange(b).repeat_interleave(n)
    pair_node = torch.arange(n).repeat(b)
    a = alphas.to(x.device, torch.float32)
    w = weights.to(x.device, torch.float32)
    for s in chunks(b * n, batch_size):
        i, k = pair_img[s].to(x.device), pair_node[s].to(x.device)
        path = base[i] + a[k].view(-1, 1, 1, 1) * (x[i] - base[i])
        grad, _ = input_gradient(model, path, targets[i])
        total.index_add_(0, i, grad * w[k].view(-1, 1, 1, 1))
    raw = (x - base) * total
    with torch.no_grad():
        clean = scores_of(model, x, targets)
        delta = clean - scores_of(model, base, targets)
    gap = raw.flatten(1).sum(1) - delta
    info = {"completeness_gap": gap.tolist(), "delta": delta.tolist(),
            "relative_gap": (gap.abs() / delta.abs().clamp(min=1e-12)).tolist(),
            "steps": int(steps), "rule": rule, "baseline": baseline if isinstance(baseline, str) else "image"}
    return Attribution(REDUCTIONS["sum"](raw), raw, info=info, reduction="sum", scores=clean)
