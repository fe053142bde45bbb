"""Gradient-based saliency: what the network looks at in a real photo.

Eight methods share one registry (``SALIENCY_METHODS``; one decorated function each) and the
engine's model loading, preprocessing (images in [0, 1], the :class:`~synthviz.models.Model`
normalises), layer addressing (:func:`~synthviz.layers.get_layer`, ``default_layer(model,
"gradcam")``) and hook discipline (hooks only where needed, always removed)::

    maps = synthviz.saliency("efficientnet_lite0", images, method="integrated_gradients")  # (B, 1, H, W)

* ``gradient`` (Simonyan 2014): max over colour of |∂score/∂x|; raw = the signed gradient.
* ``grad_x_input``: gradient × input, summed over colour.
* ``smoothgrad`` (Smilkov 2017): any method averaged over N noisy copies (σ = noise × input range),
  mean of the maps or of their squares.
* ``guided_backprop`` (Springenberg 2015): a :class:`GuidedReLU` torch-function mode changes the
  backward of every ReLU / ReLU6 / in-place or functional ReLU call; the model is never modified.
* ``gradcam`` (Selvaraju 2017) at any convolutional layer; raw = the weighted sum at the layer's resolution.
* ``guided_gradcam``: guided backprop × upsampled Grad-CAM.
* ``integrated_gradients`` (Sundararajan 2017): black/white/blurred/image baseline, Riemann
  (midpoint) or Gauss–Legendre nodes; reports the completeness gap.
* ``occlusion`` (Zeiler & Fergus 2014): score drop under a sliding window, averaged where windows overlap.

Scores are raw logits (not softmax). Every method is batched; the target is the predicted class
unless given.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import SynthvizError, did_you_mean
from ..io import load_image, resize
from ..layers import capture, default_layer, get_layer
from ..models import Model, frozen
from ..registry import Registry
from .registry import register_technique
from .common import get_model, get_image, positive

SALIENCY_METHODS: Registry = Registry("saliency method", "use all or a comma list of: gradient, grad_x_input, "
                                      "smoothgrad, guided_backprop, gradcam, guided_gradcam, "
                                      "integrated_gradients, occlusion")
register_method = SALIENCY_METHODS.register
ALIASES = {"vanilla": "gradient", "saliency": "gradient", "gxi": "grad_x_input", "input_x_gradient": "grad_x_input",
           "guided": "guided_backprop", "gbp": "guided_backprop", "ig": "integrated_gradients",
           "integrated": "integrated_gradients", "grad_cam": "gradcam", "guided_grad_cam": "guided_gradcam"}

# "all", in the comparison figure's order (methods registered later come after these)
ORDER = ["gradient", "smoothgrad", "grad_x_input", "integrated_gradients", "guided_backprop", "gradcam",
         "guided_gradcam", "occlusion"]

# Every method option with its default: the Python API, the CLI and the sanity check share these.
DEFAULTS: dict = dict(
    layer=None,            # gradcam / guided_gradcam layer (None: the model's "gradcam" layer)
    base="gradient",       # smoothgrad: the method averaged
    samples=25,            # smoothgrad: noisy copies (25-50 in the paper)
    noise=0.15,            # smoothgrad: σ as a fraction of the input range (max - min)
    squared=False,         # smoothgrad: mean of squared maps (SmoothGrad-SQ)
    steps=64,              # integrated gradients: path points
    baseline="black",      # integrated gradients: black, white, blurred, or an image (path / tensor)
    rule="gauss-legendre", # integrated gradients: gauss-legendre or riemann (midpoint)
    window=32,             # occlusion: square window side in pixels
    stride=16,             # occlusion: window step in pixels
    value=0.5,             # occlusion: the fill value in [0, 1] (0.5 = grey)
    batch_size=16,         # images per forward pass for the expanded methods (smoothgrad, IG, occlusion)
    seed=0,                # smoothgrad noise
    reduce=None,           # over colour: max (of |a|), abs (sum |a|), sum, none; None: the method's own
)


@dataclass
class Attribution:
    """One method's answer for a batch.

    Attributes:
        maps: (B, 1, H, W) — one value per pixel (``reduce="none"``: (B, 3, H, W)).
        raw: the method's own output before reduction: (B, 3, H, W) signed attributions for the
            pixel-space methods, (B, 1, h, w) the pre-ReLU weighted sum at the layer for Grad-CAM.
        targets: the class explained, per image. ``display``: ``"abs"`` or ``"positive"`` — what a
            heatmap shows. ``info``: method extras (IG completeness gap, the Grad-CAM layer...).
        reduction: the :data:`REDUCTIONS` entry that made ``maps`` from ``raw``, or None.
    """

    maps: torch.Tensor
    raw: torch.Tensor
    method: str = ""
    targets: list[int] = field(default_factory=list)
    display: str = "abs"
    info: dict = field(default_factory=dict)
    reduction: str | None = None  # how maps came from raw over colour ("max", "sum"), None if not so


REDUCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "max": lambda a: a.abs().amax(1, keepdim=True),
    "abs": lambda a: a.abs().sum(1, keepdim=True),
    "sum": lambda a: a.sum(1, keepdim=True),
    "none": lambda a: a,
}


def method_names(methods: str | Sequence[str] | None = "all") -> list[str]:
    """``"all"`` -> every method; ``"gradient,ig"`` -> ``["gradient", "integrated_gradients"]`` (checked)."""
    if methods is None or methods == "all":
        return [n for n in ORDER if n in SALIENCY_METHODS] + [n for n in SALIENCY_METHODS if n not in ORDER]
    if isinstance(methods, str):
        methods = [m for m in methods.split(",")]
    out = []
    for m in methods:
        m = m.strip().lower().replace("-", "_")
        if not m:
            continue
        m = ALIASES.get(m, m)
        SALIENCY_METHODS.get(m)  # unknown -> one-line error with suggestions
        out.append(m)
    if not out:
        raise SynthvizError("no saliency method given; use all or a comma list such as gradient,gradcam")
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- shared pieces

def _scores(model: Model, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> the target logits (B,)."""
    return model(x).gather(1, targets[:, None])[:, 0]


def input_gradient(model: Model, x: torch.Tensor, targets: torch.Tensor,
                   guided: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """∂score/∂x for each image: (grad (B, 3, H, W), scores (B,)); ``guided`` uses guided backprop."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad(), (GuidedReLU() if guided else contextlib.nullcontext()) as mode:
        scores = _scores(model, x, targets)
    if guided and mode.calls == 0:
        warnings.warn(f"{model.name} has no ReLU/ReLU6 calls: guided backprop equals the plain gradient",
                      stacklevel=3)
    (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad, scores.detach()


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def resolve_targets(model: Model, images: torch.Tensor, target=None) -> torch.Tensor:
    """(B,) class indices: the prediction where ``target`` is None, else an index/name or one per image."""
    b = len(images)
    if target is None:
        with torch.no_grad():
            return model(images).argmax(1)
    if isinstance(target, torch.Tensor):
        target = target.flatten().tolist()
    if isinstance(target, (list, tuple)):
        if len(target) == 1:
            target = target[0]
        elif len(target) != b:
            raise SynthvizError(f"{len(target)} targets for {b} images; give one class or one per image")
    if isinstance(target, (list, tuple)):
        idx = [model.class_index(t) for t in target]
    else:
        idx = [model.class_index(target)] * b
    n = model.num_classes or model(images[:1]).shape[1]
    for i in idx:  # models without class names still get a range check
        if not 0 <= i < n:
            raise SynthvizError(f"class {i} is out of range for {model.name}: use 0..{n - 1}")
    return torch.tensor(idx, device=images.device, dtype=torch.long)


# --------------------------------------------------------------------------- guided backprop

class _GuidedClamp(torch.autograd.Function):
    """clamp(x, lo, hi) whose backward passes only positive gradient where lo < x < hi."""

    @staticmethod
    def forward(ctx, x, lo, hi, inplace):
        open_ = x > lo if hi is None else (x > lo) & (x < hi)
        ctx.save_for_backward(open_)  # a mask, not x: safe when x is then overwritten in place
        if inplace:
            ctx.mark_dirty(x)
            return x.clamp_(lo, hi)
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (open_,) = ctx.saved_tensors
        return grad.clamp(min=0) * open_, None, None, None


def _relu_args(input, inplace=False):
    return input, 0.0, None, inplace


def _relu_inplace_args(input):
    return input, 0.0, None, True


def _relu_plain_args(input):
    return input, 0.0, None, False


def _relu6_args(input, inplace=False):
    return input, 0.0, 6.0, inplace


def _relu6_plain_args(input):
    return input, 0.0, 6.0, False


def _relu6_inplace_args(input):
    return input, 0.0, 6.0, True


def _hardtanh_args(input, min_val=-1.0, max_val=1.0, inplace=False):
    return input, min_val, max_val, inplace


def _hardtanh_inplace_args(input, min_val=-1.0, max_val=1.0):
    return input, min_val, max_val, True


# Every way a ReLU-type activation reaches the tensor library: modules (nn.ReLU/ReLU6 call F.relu /
# F.hardtanh), functional calls, torch.* and Tensor methods, in place or not.
_ACTIVATIONS: dict = {
    F.relu: _relu_args, torch.relu: _relu_plain_args, torch.Tensor.relu: _relu_plain_args,
    torch.relu_: _relu_inplace_args, torch.Tensor.relu_: _relu_inplace_args,
    F.relu6: _relu6_args, torch._C._nn.relu6: _relu6_plain_args, torch._C._nn.relu6_: _relu6_inplace_args,
    F.hardtanh: _hardtanh_args, torch._C._nn.hardtanh: _hardtanh_args,
    torch._C._nn.hardtanh_: _hardtanh_inplace_args,
}


class GuidedReLU(TorchFunctionMode):
    """Inside this context, every ReLU-type call (``nn.ReLU``, ``nn.ReLU(inplace=True)``, ``F.relu``,
    ``torch.relu_``, ``nn.ReLU6``, ``F.relu6``, ``F.hardtanh(x, 0, t)``) back-propagates only positive
    gradient where its input is in the open range. The model itself is never touched, so nothing
    needs restoring after an error; ``calls`` counts the activations changed."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        parse = _ACTIVATIONS.get(func)
        if parse is not None and torch.is_grad_enabled():
            x, lo, hi, inplace = parse(*args, **kwargs)
            if isinstance(x, torch.Tensor) and x.requires_grad and lo == 0:
                self.calls += 1
                return _GuidedClamp.apply(x, lo, hi, inplace)
        return func(*args, **kwargs)


# --------------------------------------------------------------------------- layer gradients

@contextlib.contextmanager
def layer_gradient_tap(model: Model, layer: str) -> Iterator[dict]:
    """Hook ``layer`` so its (first-call) output becomes a leaf: the backward stops there, and the
    activation kept is the layer's own output even if a later in-place op overwrites the tensor
    passed on. Yields a dict filled with ``"act"`` during the forward; the hook is always removed."""
    store: dict = {}

    def hook(module, inputs, output):
        if "act" in store:
            return None
        out = output if isinstance(output, torch.Tensor) else output[0]
        if out.dim() != 4:
            raise SynthvizError(_not_conv(model, layer, out))
        leaf = out.detach().requires_grad_(True)
        store["act"] = leaf
        passed = leaf.clone()  # what the rest of the network sees (and may modify in place)
        return passed if isinstance(output, torch.Tensor) else (passed, *output[1:])

    handle = get_layer(model, layer).register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def _not_conv(model: Model, layer: str, out: torch.Tensor) -> str:
    return (f"layer '{layer}' is not convolutional (its output is {tuple(out.shape[1:])}); Grad-CAM needs a "
            f"layer with a spatial map, e.g. --layer {default_layer(model, 'gradcam')}")


def check_conv_layer(model: Model, layer: str, images: torch.Tensor) -> None:
    """One-line error unless ``layer`` outputs a (B, C, h, w) map (a truncated forward of one image)."""
    if layer == "logits":
        raise SynthvizError(f"layer 'logits' is not convolutional; Grad-CAM needs a layer with a spatial map, "
                            f"e.g. --layer {default_layer(model, 'gradcam')}")
    act = capture(model, images[:1], [layer])[layer]
    if act.dim() != 4:
        raise SynthvizError(_not_conv(model, layer, act))


# --------------------------------------------------------------------------- the methods
# Each: fn(model, x (B, 3, H, W) in [0, 1] on the model's device, targets (B,), **its options) -> Attribution.

@register_method("gradient")
def gradient(model: Model, x: torch.Tensor, targets: torch.Tensor) -> Attribution:
    """Vanilla gradient: max over colour of |∂score/∂x|; raw = the signed gradient."""
    grad, _ = input_gradient(model, x, targets)
    return Attribution(REDUCTIONS["max"](grad), grad, reduction="max")


@register_method("grad_x_input")
def grad_x_input(model: Model, x: torch.Tensor, targets: torch.Tensor) -> Attribution:
    """Gradient × input, summed over colour (signed)."""
    grad, _ = input_gradient(model, x, targets)
    raw = grad * x
    return Attribution(REDUCTIONS["sum"](raw), raw, reduction="sum")


@register_method("guided_backprop")
def guided_backprop(model: Model, x: torch.Tensor, targets: torch.Tensor) -> Attribution:
    """Guided backpropagation: max over colour of |guided gradient|; raw = the guided gradient."""
    grad, _ = input_gradient(model, x, targets, guided=True)
    return Attribution(REDUCTIONS["max"](grad), grad, reduction="max")


@register_method("gradcam")
def gradcam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None) -> Attribution:
    """Grad-CAM: α_k = spatial mean of ∂score/∂A_k; map = ReLU(Σ_k α_k A_k), bilinearly upsampled
    to (B, 1, H, W); raw = Σ_k α_k A_k (before the ReLU) at the layer's (h, w)."""
    layer = layer or default_layer(model, "gradcam")
    check_conv_layer(model, layer, x)
    with layer_gradient_tap(model, layer) as store, torch.enable_grad():
        scores = _scores(model, x, targets)
    act = store["act"]
    (grad,) = torch.autograd.grad(scores.sum(), act)
    weights = grad.mean((2, 3), keepdim=True)
    raw = (weights * act).sum(1, keepdim=True).detach()
    maps = F.interpolate(raw.clamp(min=0), size=x.shape[-2:], mode="bilinear", align_corners=False)
    return Attribution(maps, raw, display="positive", info={"layer": layer})


@register_method("guided_gradcam")
def guided_gradcam(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None) -> Attribution:
    """Guided Grad-CAM: guided backprop × upsampled Grad-CAM; max over colour of |·|."""
    cam = gradcam(model, x, targets, layer)
    guided, _ = input_gradient(model, x, targets, guided=True)
    raw = guided * cam.maps
    return Attribution(REDUCTIONS["max"](raw), raw, info=cam.info, reduction="max")


def make_baseline(baseline, x: torch.Tensor) -> torch.Tensor:
    """``black`` | ``white`` | ``blurred`` (Gaussian σ = side/10) | an image path or tensor -> like ``x``."""
    if isinstance(baseline, str) and baseline in ("black", "white"):
        return torch.full_like(x, 0.0 if baseline == "black" else 1.0)
    if isinstance(baseline, str) and baseline == "blurred":
        from kornia.filters import gaussian_blur2d

        sigma = max(x.shape[-2:]) / 10
        k = min(2 * int(3 * sigma) + 1, 2 * (min(x.shape[-2:]) // 2) - 1)  # reflect padding needs k < side
        return gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="reflect")
    if isinstance(baseline, (str, os.PathLike)):
        if not os.path.exists(baseline):
            raise SynthvizError(f"unknown baseline '{baseline}'; use black, white, blurred or an image file")
        base = load_image(baseline)
    else:
        base = get_image(baseline, what="baseline")
    return resize(base.to(x.device), tuple(x.shape[-2:])).expand_as(x)


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


@register_method("integrated_gradients")
def integrated_gradients(model: Model, x: torch.Tensor, targets: torch.Tensor, steps: int = 64,
                         baseline="black", rule: str = "riemann", batch_size: int = 16) -> Attribution:
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
    for s in _chunks(b * n, batch_size):
        i, k = pair_img[s].to(x.device), pair_node[s].to(x.device)
        path = base[i] + a[k].view(-1, 1, 1, 1) * (x[i] - base[i])
        grad, _ = input_gradient(model, path, targets[i])
        total.index_add_(0, i, grad * w[k].view(-1, 1, 1, 1))
    raw = (x - base) * total
    with torch.no_grad():
        delta = _scores(model, x, targets) - _scores(model, base, targets)
    gap = raw.flatten(1).sum(1) - delta
    info = {"completeness_gap": gap.tolist(), "delta": delta.tolist(),
            "relative_gap": (gap.abs() / delta.abs().clamp(min=1e-12)).tolist(),
            "steps": int(steps), "rule": rule, "baseline": baseline if isinstance(baseline, str) else "image"}
    return Attribution(REDUCTIONS["sum"](raw), raw, info=info, reduction="sum")


def _windows(side: int, window: int, stride: int) -> list[int]:
    """Window starts covering [0, side): a last window flush with the edge when the stride misses it."""
    window = min(window, side)
    starts = list(range(0, side - window + 1, stride))
    if starts[-1] != side - window:
        starts.append(side - window)
    return starts


@register_method("occlusion")
def occlusion(model: Model, x: torch.Tensor, targets: torch.Tensor, window: int = 32, stride: int = 16,
              value: float = 0.5, batch_size: int = 16) -> Attribution:
    """Score drop f(x) − f(x with a window filled with ``value``), averaged over the windows covering
    each pixel: (B, 1, H, W), positive where hiding the pixels lowers the score."""
    positive("window", window)
    positive("stride", stride)
    h, w = x.shape[-2:]
    win_h, win_w = min(window, h), min(window, w)
    spots = [(y0, x0) for y0 in _windows(h, window, stride) for x0 in _windows(w, window, stride)]
    jobs = [(bi, y0, x0) for bi in range(len(x)) for (y0, x0) in spots]
    total = torch.zeros(len(x), 1, h, w, device=x.device)
    count = torch.zeros(1, 1, h, w, device=x.device)
    for y0, x0 in spots:
        count[..., y0:y0 + win_h, x0:x0 + win_w] += 1
    with torch.no_grad():
        clean = _scores(model, x, targets)
        for s in _chunks(len(jobs), batch_size):
            chunk = jobs[s]
            idx = torch.tensor([j[0] for j in chunk], device=x.device)
            batch = x[idx].clone()
            for row, (_, y0, x0) in enumerate(chunk):
                batch[row, :, y0:y0 + win_h, x0:x0 + win_w] = value
            drop = clean[idx] - _scores(model, batch, targets[idx])
            for row, (bi, y0, x0) in enumerate(chunk):
                total[bi, :, y0:y0 + win_h, x0:x0 + win_w] += drop[row]
    maps = total / count
    return Attribution(maps, maps.clone(), display="positive", info={"windows": len(spots)})


@register_method("smoothgrad")
def smoothgrad(model: Model, x: torch.Tensor, targets: torch.Tensor, base: str = "gradient", samples: int = 25,
               noise: float = 0.15, squared: bool = False, seed: int | None = 0, batch_size: int = 16,
               _options: dict | None = None) -> Attribution:
    """Mean of ``base``'s maps (or of their squares) over ``samples`` copies of each image with
    Gaussian noise of σ = ``noise`` × (max − min) of that image.

    For pixel-space bases the signed per-colour maps (``raw``) are averaged, then reduced over colour
    as the base does (as in the SmoothGrad paper: noise in the sign averages out); Grad-CAM and
    occlusion maps are averaged as they are."""
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
    options = dict(_options or {}, batch_size=batch_size)
    # copies per call of the base method: about batch_size images per forward, except for methods
    # that already expand each image into many forwards (IG, occlusion), called one copy at a time
    per_call = 1 if _expands(base) else max(1, batch_size // len(x))
    maps_sum = raw_sum = None
    done = 0
    while done < n:
        k = min(per_call, n - done)
        xs = x.repeat(k, 1, 1, 1)
        eps = torch.randn(xs.shape, generator=gen, device=x.device)
        noisy = xs + sigma.repeat(k).view(-1, 1, 1, 1) * eps
        att = call_method(base, model, noisy, targets.repeat(k), options)
        reduction = att.reduction
        m = (att.raw if reduction else att.maps).view(k, len(x), *(att.raw if reduction else att.maps).shape[1:])
        r = att.raw.view(k, len(x), *att.raw.shape[1:])
        m, r = (m ** 2, r ** 2) if squared else (m, r)
        maps_sum = m.sum(0) if maps_sum is None else maps_sum + m.sum(0)
        raw_sum = r.sum(0) if raw_sum is None else raw_sum + r.sum(0)
        done += k
    maps = REDUCTIONS[reduction](maps_sum / n) if reduction else maps_sum / n
    info = {"base": base, "samples": n, "noise": noise, "squared": bool(squared)}
    return Attribution(maps, raw_sum / n, display=att.display, info=info, reduction=reduction)


def _expands(method: str) -> bool:
    """Methods that already batch many forwards per image (their own batch_size) are called per copy."""
    return method in ("integrated_gradients", "occlusion")


def call_method(name: str, model: Model, x: torch.Tensor, targets: torch.Tensor, options: dict) -> Attribution:
    """Run one registered method with the options it takes (the rest are ignored)."""
    fn = SALIENCY_METHODS.get(name)
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in options.items() if k in params}
    if "_options" in params:
        kwargs["_options"] = options
    att = fn(model, x, targets, **kwargs)
    att.method = name
    if att.display == "abs" and att.maps.shape[1] == 1 and name in ("gradcam", "occlusion"):
        att.display = "positive"
    return att


def check_options(options: dict) -> dict:
    """Fill in defaults; an unknown option name is a one-line error."""
    for k in options:
        if k not in DEFAULTS:
            raise SynthvizError(f"unknown saliency option '{k}'{did_you_mean(k, DEFAULTS)}")
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None or k == "layer"}}
    if opts["reduce"] is not None and opts["reduce"] not in REDUCTIONS:
        raise SynthvizError(f"unknown reduce '{opts['reduce']}'; use {', '.join(REDUCTIONS)}")
    positive("batch_size", opts["batch_size"])
    return opts


def attribute(model: Model, images: torch.Tensor, method: str = "gradient", target=None,
              **options) -> Attribution:
    """Run ``method`` on a batch (B, 3, H, W) in [0, 1] for ``target`` (None: the predicted class;
    an index, a name, or one per image). Options: see :data:`DEFAULTS`. The model is left exactly as
    it was (train/eval modes, ``requires_grad`` flags, no hooks), also after an error."""
    opts = check_options(options)
    name = method_names(method)
    if len(name) != 1:
        raise SynthvizError(f"give one method here, not {len(name)}; use the figure for several")
    name = name[0]
    x = images.to(model.device, torch.float32)
    model.check_size(min(x.shape[-2:]))
    with frozen(model.net):
        targets = resolve_targets(model, x, target)
        att = call_method(name, model, x, targets, opts)
    if opts["reduce"] is not None and att.raw.shape[1] == 3 and att.raw.shape[-2:] == x.shape[-2:]:
        att.maps = REDUCTIONS[opts["reduce"]](att.raw)
        if opts["reduce"] in ("max", "abs"):
            att.display = "abs"
    att.maps, att.raw = att.maps.detach(), att.raw.detach()
    att.targets = targets.tolist()
    return att


def _batch(images, size: int | None) -> torch.Tensor:
    """Paths / a list of paths / a (B, 3, H, W) or (3, H, W) tensor -> (B, 3, H, W) in [0, 1]."""
    if isinstance(images, (list, tuple)) and images and not isinstance(images[0], torch.Tensor):
        loaded = [load_image(p, size) for p in images]
        if len({tuple(t.shape) for t in loaded}) > 1:
            raise SynthvizError("the images have different sizes; pass --size, or one image at a time")
        return torch.cat(loaded)
    if isinstance(images, (list, tuple)):
        images = torch.stack([im if im.dim() == 3 else im[0] for im in images])
    if isinstance(images, torch.Tensor):
        if images.dim() == 3:
            images = images[None]
        if images.dim() != 4 or images.shape[1] != 3:
            raise SynthvizError(f"images must be (B, 3, H, W) in [0, 1], not {tuple(images.shape)}")
        images = images.float()
        if images.min() < 0 or images.max() > 1:
            raise SynthvizError("images must be in [0, 1]; the model normalises them itself")
        return resize(images, size) if size else images
    return get_image(images, size)


@register_technique("saliency")
def saliency(model="efficientnet_lite0", images=None, *, method: str = "gradient", target=None,
             weights: str = "default", size: int | None = None, device: str | None = None,
             layer: str | None = None, base: str = "gradient", samples: int = 25, noise: float = 0.15,
             squared: bool = False, steps: int = 64, baseline="black", rule: str = "gauss-legendre", window: int = 32,
             stride: int = 16, value: float = 0.5, batch_size: int = 16, seed: int | None = 0,
             reduce: str | None = None) -> torch.Tensor:
    """Saliency maps of ``images`` (a (B, 3, H, W) tensor in [0, 1], a path, or a list of paths).

    Returns (B, 1, H, W) — the batch's shape with colour reduced — on the images' device
    (``reduce="none"``: (B, 3, H, W) signed attributions for the pixel-space methods). Use
    :func:`attribute` for the raw maps, targets and method extras (IG completeness gap...).
    """
    if images is None:
        raise SynthvizError("no images given; pass a (B, 3, H, W) tensor in [0, 1] or an image path")
    m = get_model(model, weights, device)
    x = _batch(images, size)
    att = attribute(m, x, method, target, layer=layer, base=base, samples=samples, noise=noise, squared=squared,
                    steps=steps, baseline=baseline, rule=rule, window=window, stride=stride, value=value,
                    batch_size=batch_size, seed=seed, reduce=reduce)
    return att.maps.to(images.device if isinstance(images, torch.Tensor) else "cpu")


__all__ = ["ALIASES", "Attribution", "DEFAULTS", "GuidedReLU", "SALIENCY_METHODS", "attribute", "input_gradient",
           "layer_gradient_tap", "method_names", "register_method", "saliency"]
