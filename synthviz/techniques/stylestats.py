"""What texture synthesis and style transfer share: style statistics, layer presets, the
coarse-to-fine ladder of renders, temporary model patches and colour matching.

Style statistics (Gatys et al. 2015) are size-independent summaries of a layer's features:
``gram`` (G = F Fᵀ / HW) or ``moments`` (mean and covariance, which blend linearly and keep
deep layers' means from swamping their spread). Several style images blend by a weighted
average of their statistics.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import RenderResult, render, seeded
from ..errors import SynthvizError
from ..io import resize
from ..layers import LOGITS, Tap, capture, default_layer, get_layer
from ..models import Model
from ..objectives import Context, Objective, gram, gram_match, moments, moments_match
from ..params import ImageParam, make_param

STATS = ("gram", "moments")
MIN_STYLE_SIDE = 64  # below this the deepest style layers see a handful of positions: statistics are noise
MIN_SIDE = 32  # the smallest image a ladder scale may have


# ----------------------------------------------------------------------------- inputs
def as_list(value: str | Sequence | None) -> list | None:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]``; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def check_min_side(image: torch.Tensor, what: str, minimum: int = MIN_STYLE_SIDE) -> None:
    h, w = image.shape[-2:]
    if min(h, w) < minimum:
        raise SynthvizError(f"{what} is only {w}x{h} px: too small for style statistics; "
                            f"use an image at least {minimum} px on its shorter side")


def is_grey(image: torch.Tensor, tol: float = 2 / 255) -> bool:
    """True when the three channels are (nearly) equal: a greyscale image read as RGB."""
    return bool((image - image.mean(1, keepdim=True)).abs().amax() <= tol)


def _floats(value: float | Sequence[float] | str, what: str) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str):
        try:
            return [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise SynthvizError(f"cannot read {what} '{value}'; write them like 0.7,0.3") from None
    return [float(v) for v in value]


def _normalised(values: list[float], what: str) -> list[float]:
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise SynthvizError(f"{what} {values} must be non-negative with a positive sum")
    return [v / sum(values) for v in values]


def blend_weights(weights: float | Sequence[float] | str | None, count: int) -> list[float]:
    """Blend weights normalised to sum 1, one per style image (default equal)."""
    if weights is None:
        return [1.0 / count] * count
    values = _floats(weights, "blend weights")
    if len(values) != count:
        raise SynthvizError(f"{len(values)} blend weight(s) for {count} style image(s); give one weight per style image")
    return _normalised(values, "blend weights")


def check_stat(stat: str) -> None:
    if stat not in STATS:
        raise SynthvizError(f"unknown style statistic '{stat}'; use gram or moments")


def check_layer(model: Model, layer: str) -> str:
    """A real, spatial layer of the model (``get_layer`` names close matches when it is not)."""
    if layer == LOGITS:
        raise SynthvizError("'logits' has no spatial features; pick a convolutional layer (see `synthviz layers`)")
    get_layer(model, layer)
    return layer


def style_layers(model: Model, layers: str | Sequence[str] | None = None) -> list[str]:
    """The style layers: the given ones (list or ``"a,b,c"``) or the model's preset."""
    chosen = as_list(layers) or as_list(default_layer(model, "style"))
    return [check_layer(model, n) for n in dict.fromkeys(chosen)]


def content_layer(model: Model, layer: str | None = None) -> str:
    return check_layer(model, layer or default_layer(model, "content"))


def layer_weights(weights: float | Sequence[float] | str | None, layers: Sequence[str]) -> list[float]:
    """Per-layer style weights normalised to sum 1 (default equal: each layer's error is relative)."""
    if weights is None:
        return [1.0 / len(layers)] * len(layers)
    values = _floats(weights, "layer weights")
    if len(values) != len(layers):
        raise SynthvizError(f"{len(values)} layer weight(s) for {len(layers)} style layer(s) ({', '.join(layers)}); "
                            "give one weight per layer")
    return _normalised(values, "layer weights")


# ----------------------------------------------------------------------------- statistics
StyleTargets = dict[str, tuple[torch.Tensor, ...]]


def stats_of(act: torch.Tensor, stat: str) -> tuple[torch.Tensor, ...]:
    """(1, C, H, W) -> (G,) for ``gram`` or (mean, cov) for ``moments``."""
    return (gram(act),) if stat == "gram" else moments(act)


def style_targets(model: Model, images: Sequence[torch.Tensor], weights: Sequence[float],
                  layers: Sequence[str], stat: str = "gram") -> StyleTargets:
    """The blended statistics of ``images`` (each (1, 3, H, W), any size) at ``layers``."""
    targets: StyleTargets = {}
    for image, w in zip(images, weights):
        acts = capture(model, image, layers)
        for layer in layers:
            s = [w * t for t in stats_of(acts[layer], stat)]
            targets[layer] = tuple(a + b for a, b in zip(targets[layer], s)) if layer in targets else tuple(s)
    return targets


def style_objective(targets: StyleTargets, weights: Sequence[float], stat: str = "gram") -> Objective:
    """Minus the weighted relative style error over the layers of ``targets`` (0 = a perfect match)."""
    make = gram_match if stat == "gram" else moments_match
    parts = [w * make(layer, *t) for (layer, t), w in zip(targets.items(), weights) if w > 0]
    total = sum(parts[1:], parts[0])
    return Objective(total.fn, f"style[{stat}]({', '.join(targets)})", total.layers)


@torch.no_grad()
def score(model: Model, objective: Objective, image: torch.Tensor) -> float:
    """The objective of one image (1, 3, H, W), no transforms, no gradient."""
    image = image.to(model.device)
    with torch.no_grad(), Tap(model, objective.layers) as tap:
        return float(objective(Context(image, tap(image))).sum())


# ----------------------------------------------------------------------------- model patches
def _swap_children(net: nn.Module, make: Callable[[nn.Module], nn.Module | None]) -> list[tuple[nn.Module, str, nn.Module]]:
    swapped = []
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            new = make(child)
            if new is not None:
                setattr(parent, name, new)
                swapped.append((parent, name, child))
    return swapped


@contextlib.contextmanager
def pooling(model: Model, kind: str = "max") -> Iterator[Model]:
    """``kind="avg"``: every ``nn.MaxPool2d`` becomes an ``nn.AvgPool2d`` of the same geometry for the
    duration (Gatys: smoother gradients, smoother images); the original modules are put back after,
    even on error or Ctrl-C. ``"max"`` leaves the model alone."""
    if kind not in ("max", "avg"):
        raise SynthvizError(f"unknown pooling '{kind}'; use max or avg")

    def make(m: nn.Module) -> nn.Module | None:
        if kind == "avg" and isinstance(m, nn.MaxPool2d) and m.dilation in (1, (1, 1)):
            return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode, count_include_pad=False)
        return None

    swapped = _swap_children(model.net, make)
    try:
        yield model
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


@contextlib.contextmanager
def circular_padding(model: Model, enabled: bool = True) -> Iterator[Model]:
    """Make every zero padding of the network circular for the duration (convolutions' own
    padding and explicit ``ZeroPad2d`` modules), so a periodic image is seen as a torus:
    no border exists, and the texture is optimised to continue across its wrap-around."""
    if not enabled:
        yield model
        return
    convs = [m for m in model.net.modules()
             if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros" and m.padding != "valid"
             and any(p > 0 for p in (m.padding if isinstance(m.padding, tuple) else (1,)))]

    def make(m: nn.Module) -> nn.Module | None:
        if isinstance(m, nn.ConstantPad2d) and float(m.value) == 0.0:
            return nn.CircularPad2d(m.padding)
        return None

    swapped = _swap_children(model.net, make)
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield model
    finally:
        for conv in convs:
            conv.padding_mode = "zeros"
        for parent, name, child in swapped:
            setattr(parent, name, child)


# ----------------------------------------------------------------------------- colour
def match_histogram(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Give each colour channel of ``image`` (1, 3, H, W) the value distribution of ``reference``
    (1, 3, H', W') by rank (exact histogram specification). Returns (1, 3, H, W)."""
    out = torch.empty_like(image)
    for c in range(image.shape[1]):
        src = image[0, c].flatten()
        ref = reference[0, c].flatten().sort().values.to(src)
        pos = torch.linspace(0, ref.numel() - 1, src.numel(), device=src.device)
        lo = pos.floor().long().clamp(max=ref.numel() - 1)
        hi = (lo + 1).clamp(max=ref.numel() - 1)
        values = torch.lerp(ref[lo], ref[hi], pos - lo)
        flat = torch.empty_like(src)
        flat[src.argsort()] = values
        out[0, c] = flat.view_as(image[0, c])
    return out


def _sqrtm(cov: torch.Tensor, power: float) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    return vecs @ torch.diag(vals.clamp_min(1e-6) ** power) @ vecs.T


def match_color(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Affine colour transfer: ``image``'s RGB mean and covariance become ``reference``'s
    (Gatys et al. 2016, "Preserving colour"). (1, 3, H, W) -> (1, 3, H, W) in [0, 1]."""
    x, r = image[0].reshape(3, -1).double(), reference[0].reshape(3, -1).double().to(image.device)
    mx, mr = x.mean(1, keepdim=True), r.mean(1, keepdim=True)
    cx, cr = torch.cov(x) + 1e-5 * torch.eye(3, dtype=x.dtype, device=x.device), torch.cov(r) + 1e-5 * torch.eye(3, dtype=x.dtype, device=x.device)
    a = _sqrtm(cr, 0.5) @ _sqrtm(cx, -0.5)
    return (a @ (x - mx) + mr).float().reshape_as(image).clamp(0, 1)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, H, W): the luma Y (BT.601) repeated in three channels."""
    from kornia.color import rgb_to_ycbcr

    return rgb_to_ycbcr(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def with_chroma(image: torch.Tensor, chroma_of: torch.Tensor) -> torch.Tensor:
    """The luma of ``image`` with the chroma (Cb, Cr) of ``chroma_of`` (resized to fit). Both (1, 3, H, W)."""
    from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb

    chroma_of = resize(chroma_of.to(image), tuple(image.shape[-2:]))
    y = rgb_to_ycbcr(image)[:, :1]
    return ycbcr_to_rgb(torch.cat([y, rgb_to_ycbcr(chroma_of)[:, 1:]], 1)).clamp(0, 1)


def chroma(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 2, H, W): the Cb, Cr channels."""
    from kornia.color import rgb_to_ycbcr

    return rgb_to_ycbcr(image)[:, 1:]


def periodic_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a tileable image so it stays tileable: interpolate a wrapped copy, keep the middle."""
    h, w = image.shape[-2:]
    p = 4
    wrapped = F.pad(image, (p, p, p, p), mode="circular")
    k = (size[0] / h, size[1] / w)
    big = F.interpolate(wrapped, size=(round((h + 2 * p) * k[0]), round((w + 2 * p) * k[1])), mode="bicubic",
                        align_corners=False)
    top, left = round(p * k[0]), round(p * k[1])
    return big[..., top : top + size[0], left : left + size[1]].clamp(0, 1)


# ----------------------------------------------------------------------------- the ladder
def ladder_sizes(h: int, w: int, scales: int | None = None, start: int = 128, factor: float = 2.0) -> list[tuple[int, int]]:
    """Sizes from coarse to fine, each ``factor`` smaller than the next, ending at (h, w).
    ``scales=None``: as many as keep the coarsest longer side at ``start`` px or more (and its
    shorter side at ``MIN_SIDE``)."""
    def sizes_for(n: int) -> list[tuple[int, int]]:
        return [(round(h / factor ** k), round(w / factor ** k)) for k in reversed(range(n))]

    if scales is None:
        scales = 1 + max(0, int(math.floor(math.log(max(h, w) / start, factor) + 1e-9)))
        while scales > 1 and min(sizes_for(scales)[0]) < MIN_SIDE:
            scales -= 1
    if scales < 1:
        raise SynthvizError(f"scales must be 1 or more, not {scales}")
    sizes = sizes_for(scales)
    if min(sizes[0]) < MIN_SIDE:
        raise SynthvizError(f"{scales} scales make the coarsest image {sizes[0][1]}x{sizes[0][0]} px, too small; "
                            f"use fewer --scales or a larger --size")
    return sizes


def scale_steps(steps: int, count: int) -> list[int]:
    """Steps per scale: ``steps`` at the coarsest (cheap), half as many at each finer one, which
    starts from the upsampled result (Gatys' ladder: 1000 then 500)."""
    return [steps] + [max(1, steps // 2)] * (count - 1)


def run_ladder(model: Model, sizes: Sequence[tuple[int, int]], objective_at: Callable[[int, int], Objective],
               start: Callable[[int, int], ImageParam], *, steps: Sequence[int], optimizer: str, lr: float,
               transforms_at: Callable[[int, int], Callable] | None = None, periodic: bool = False,
               seed: int | None = 0, device=None, progress: bool | str = False, frame_every: int = 0,
               label: str = "render", measure_at: Callable[[int, int], Objective] | None = None) -> RenderResult:
    """Render at each size in turn, each scale starting from the previous result upsampled
    (``param.resized``; a periodic resize for tileable images). Returns the last scale's result
    with ``history`` and ``frames`` of all scales (frames resized to the final size) and
    ``info["scales"]``: per scale its size, steps and ``measure_at(h, w)`` (default the objective)
    at the start and the end."""
    result: RenderResult | None = None
    frames, history, per_scale = [], [], []
    for i, (h, w) in enumerate(sizes):
        objective = objective_at(h, w)
        with seeded(seed):
            if result is None:
                param = start(h, w)
            elif periodic:
                param = make_param(_kind(result.param), 1, (h, w), init=periodic_resize(result.param.image(), (h, w)))
            else:
                param = result.param.resized(h, w)
        param = param.to(model.device)
        tag = f"{label} {w}x{h}" + (f" ({i + 1}/{len(sizes)})" if len(sizes) > 1 else "")
        measure = measure_at(h, w) if measure_at else objective
        before = score(model, measure, param.image())
        result = render(model, objective, param, transforms=transforms_at(h, w) if transforms_at else None,
                        optimizer=optimizer, lr=lr, steps=steps[i],
                        seed=None if seed is None else seed + i, device=device,
                        progress=tag if progress else False, frame_every=frame_every)
        after = score(model, measure, result.images)
        per_scale.append({"size": (h, w), "steps": result.steps, "start": before, "end": after})
        frames += result.frames
        history.append(result.history)
        if result.stopped == "nan":
            break
    assert result is not None
    final = sizes[-1]
    result.frames = [f if tuple(f.shape[-2:]) == final else resize(f, final) for f in frames]
    result.history = torch.cat([hst for hst in history if len(hst)]) if any(len(hst) for hst in history) else result.history
    result.info["scales"] = per_scale
    return result


def _kind(param: ImageParam) -> str:
    from ..params import FourierImage

    return "fourier" if isinstance(param, FourierImage) else "pixel"


def default_lr(optimizer: str, param: str, lr: float | None) -> float:
    if lr is not None:
        if lr <= 0:
            raise SynthvizError(f"lr must be positive, not {lr}")
        return lr
    return 1.0 if optimizer == "lbfgs" else 0.05 if param == "fourier" else 0.02


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise SynthvizError(f"unknown {name} '{value}'; use {' or '.join(choices)}")


def warn_grey_style(content: torch.Tensor, styles: Sequence[torch.Tensor], preserve: bool) -> None:
    """A greyscale style on a colour content makes a grey picture: say so, and how to keep colour."""
    if preserve or is_grey(content):
        return
    for i, s in enumerate(styles):
        if is_grey(s):
            warnings.warn(f"style image {i + 1} is greyscale but the content is in colour: the result will be grey; "
                          "add --preserve-colors to keep the content's colours", stacklevel=3)
