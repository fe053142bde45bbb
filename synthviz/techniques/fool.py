"""Fooling images (adversarial examples): the smallest change to a photo that changes the model's mind.

Two recipes over the engine, both on the pixel parameterization initialised from the photo:

* **unconstrained** (Szegedy 2014; CS231n): gradient ascent on the target logit with each step
  normalised by its L2 norm (``l2step``), stopped as soon as the model is fooled;
* **budgeted** (FGSM/PGD, Goodfellow 2015; Madry 2018): sign steps on the log-probability,
  projected onto the L∞ ball of radius ε around the photo (``PixelImage.lower/upper``),
  targeted or untargeted.

A PNG stores 8 bits per channel, and rounding can undo a change smaller than 1/255. So the stop
test classifies the *8-bit-rounded* image, the result is that rounded image, and in the
budgeted mode the ε ball is shrunk to the 8-bit grid: the saved PNG still fools the model when
read back, and still lies within ε.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import torch

from ..callbacks import StepInfo
from ..engine import render
from ..errors import BadValue, SynthvizError
from ..io import make_grid, quantize, as_image
from ..models import DEFAULT_MODEL, ModelLike, load_model
from ..objectives import class_score
from ..params import PixelImage
from ..result import Result
from .registry import register_technique
from ..checks import non_negative, positive
from ..cost import check_size
from .common import ImageLike, require

MAX_EPSILON = 64 / 255  # beyond this the change is no longer small: leave epsilon out instead

# RdBu (reversed): blue for a decrease, white for no change, red for an increase
_DIVERGING = torch.tensor([[0.020, 0.188, 0.380], [0.263, 0.576, 0.765], [0.969, 0.969, 0.969],
                           [0.839, 0.376, 0.302], [0.404, 0.000, 0.122]])


def parse_epsilon(epsilon: float | str | None) -> float | None:
    """``2/255``, ``"2/255"``, ``0.0078`` -> a float in pixel units of [0, 1], checked.

    ε must be at least 1/255 (8-bit saving rounds smaller changes away) and at most 64/255.
    """
    if epsilon is None or (isinstance(epsilon, str) and epsilon.strip().lower() in ("", "none")):
        return None
    try:
        eps = float(Fraction(epsilon.strip())) if isinstance(epsilon, str) else float(epsilon)
    except (ValueError, ZeroDivisionError):
        raise BadValue(f"cannot read epsilon '{epsilon}'; write it like 2/255 or 0.008") from None
    if not math.isfinite(eps) or eps <= 0:
        raise BadValue(f"epsilon must be positive, e.g. 2/255, not {epsilon}")
    if eps > MAX_EPSILON:
        # a bare number of 1 or more is a count of 1/255 steps (the hint divides it); a fraction
        # such as 300/255 is already in [0, 1] units and simply too large
        bare = not (isinstance(epsilon, str) and "/" in epsilon)
        hint = (f"; did you mean {eps:g}/255?" if bare and eps >= 1 and eps <= 64 else
                "; use at most 64/255, or leave epsilon out for an unbounded change")
        raise BadValue(f"epsilon {eps:g} is too large: it is in pixel units of [0, 1], at most 64/255 "
                            f"({MAX_EPSILON:.3f}){hint}")
    if eps < 1 / 255 - 1e-9:
        raise BadValue(f"epsilon {eps:g} is below 1/255: saving to 8 bits would round the change away; "
                            "use at least 1/255")
    return eps


def grid_ball(x0: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The L∞ ball of radius ``eps`` around ``x0`` (B, 3, H, W), shrunk to 8-bit values, so that
    any 8-bit image inside the bounds is within ``eps`` of ``x0``. Returns (lower, upper)."""
    lower = torch.ceil((x0 - eps) * 255 - 1e-4) / 255  # the 1e-4 absorbs float error on grid values
    upper = torch.floor((x0 + eps) * 255 + 1e-4) / 255
    return lower.clamp(0, 1), upper.clamp(0, 1)


def diverging(change: torch.Tensor) -> torch.Tensor:
    """A signed change (B, 3, H, W) -> a diverging colour map (B, 3, H, W): the mean change over
    colour channels, scaled by its 99th percentile magnitude (so a few outliers do not wash the
    map out); blue = darker, white = unchanged, red = brighter."""
    s = change.mean(1)  # (B, H, W)
    mag = s.flatten(1).abs()
    scale = mag.topk(max(1, mag.shape[1] // 100), dim=1).values[:, -1]  # topk: quantile() caps the size
    s = (s / scale.clamp_min(1e-12).view(-1, 1, 1)).clamp(-1, 1)
    pos = (s + 1) / 2 * (len(_DIVERGING) - 1)  # in [0, 4]
    lo = pos.floor().clamp(0, len(_DIVERGING) - 2).long()
    frac = (pos - lo).unsqueeze(-1)
    cmap = _DIVERGING.to(change)
    return (cmap[lo] * (1 - frac) + cmap[lo + 1] * frac).permute(0, 3, 1, 2)


@register_technique("fool", example={"image": "skimage:chelsea", "target": "goldfish", "size": 64, "steps": 3})
def fool(model: ModelLike = DEFAULT_MODEL, image: ImageLike | None = None, *, target: int | str | None = None,
         epsilon: float | str | None = None, confidence: float = 0.0, weights: str = "default",
         size: int | None = None, steps: int | None = None, lr: float | None = None, seed: int | None = 0,
         device: str | None = None, progress: bool | str = False, frame_every: int = 0) -> Result:
    """Change ``image`` as little as possible so that ``model`` predicts ``target``.

    Args:
        model: a model name (``"efficientnet_lite0"``) or a loaded :class:`Model`.
        image: a path or a (1, 3, H, W) tensor in [0, 1]; never modified or overwritten.
        target: the class to reach (index or name); ``None``: untargeted, any class but the
            one the model predicts now.
        epsilon: ``None`` for the unconstrained recipe (L2-normalised gradient steps, stopped as
            soon as the model is fooled); a number (or ``"2/255"``) for the budgeted one: sign
            steps within an L∞ ball of that radius in pixel units, 1/255 to 64/255.
        confidence: also require the new class's probability to reach this before stopping.
        size: resize the photo so its longer side is ``size`` first (default: as it is).
        steps: at most this many steps (default 500 unconstrained, 100 budgeted).
        lr: step size: the L2 norm of each step (default an RMS change of 0.1/255 per pixel
            value, i.e. 0.1/255·√(3HW)); budgeted: the L∞ size of each sign step (default ε/4).

    Returns:
        A :class:`~synthviz.result.Result` whose ``images`` (1, 3, H, W) is the fooled
        image already rounded to 8 bits (save it as PNG and it still fools) and whose ``figure``
        is the panel original | fooled | change ×10 | diverging map, labelled. ``info`` holds
        ``original``/``original_label``/``original_confidence``, ``cls``/``label``/``confidence``
        (the new prediction), ``fooled``, ``linf`` and ``l2`` (the change in [0, 1] units) and
        ``report`` (one line); ``extras`` the ``diff`` (change ×10 around grey) and ``diff_map``.
    """
    eps = parse_epsilon(epsilon)
    positive("steps", steps, integer=True)
    positive("lr", lr)
    non_negative("confidence", confidence)
    if not 0 <= confidence < 1:
        raise SynthvizError(f"confidence must be in [0, 1), not {confidence}")
    m = load_model(model, weights, device)
    x0 = as_image(require(image, "image"), size).to(m.device)
    check_size(m, min(x0.shape[-2:]))
    with torch.no_grad():
        p0 = m(x0).softmax(-1)[0]
    orig = int(p0.argmax())
    cls = m.class_index(target) if target is not None else None
    if cls == orig:
        raise SynthvizError(f"the model already predicts class {cls} '{m.class_name(cls)}' for this image "
                            f"({float(p0[cls]):.0%}); pick another --target")

    n = x0.numel()
    param = PixelImage(1, *x0.shape[-2:], init=x0)
    if eps is None:
        # Szegedy/CS231n: raw target logit, L2-normalised steps; untargeted: away from the original class
        objective = class_score(cls, "logit") if cls is not None else -class_score(orig, "logprob")
        optimizer, lr, steps = "l2step", lr or 0.1 / 255 * math.sqrt(n), steps or 500
    else:
        objective = class_score(cls, "logprob") if cls is not None else -class_score(orig, "logprob")
        param.lower, param.upper = grid_ball(x0, eps)
        optimizer, lr, steps = "sign", lr or eps / 4, steps or 100

    def fooled(probs: torch.Tensor) -> bool:
        top = int(probs.argmax())
        ok = top == cls if cls is not None else top != orig
        return ok and float(probs[top]) >= confidence

    def stop(info: StepInfo) -> bool:
        # classify what a PNG would hold, not the float image: rounding can undo a tiny change
        with torch.no_grad():
            return fooled(m(quantize(info.param.image())).softmax(-1)[0])

    result = render(m, objective, param, optimizer=optimizer, lr=lr, steps=steps, callbacks=[stop], seed=seed,
                    progress=progress, frame_every=frame_every)
    q = quantize(result.images.to(m.device))
    if eps is not None:
        q = torch.maximum(torch.minimum(q, param.upper), param.lower)  # on the grid already: a no-op guard
    with torch.no_grad():
        p1 = m(q).softmax(-1)[0]
    new, ok = int(p1.argmax()), fooled(p1)
    change = q - x0
    linf, l2 = float(change.abs().max()), float(change.norm())
    result.images = q.cpu()
    diff = (0.5 + 10 * change).clamp(0, 1).cpu()
    diff_map = diverging(change).cpu()
    wanted = f"class {cls} '{m.class_name(cls)}'" if cls is not None else f"a class other than {orig}"
    if not ok:
        more = " or --epsilon" if eps is not None else ""
        warnings.warn(f"not fooled after {result.steps} steps: the model still does not predict {wanted}"
                      f"{' with the confidence asked' if confidence else ''}; raise --steps{more}", stacklevel=2)
    mode = f"L∞ budget {eps * 255:.3g}/255" if eps is not None else "unconstrained"
    report = (f"{m.class_name(orig)} ({orig}) {float(p0[orig]):.1%} -> {m.class_name(new)} ({new}) "
              f"{float(p1[new]):.1%}; change L∞ {linf * 255:.3g}/255, L2 {l2:.3f}; {result.steps} steps ({mode})"
              f"{'' if ok else '; NOT fooled'}")
    labels = [f"original: {float(p0[orig]):.0%} {m.class_name(orig)}", f"fooled: {float(p1[new]):.0%} {m.class_name(new)}",
              "change x10", "change (blue -, red +)"]
    panel = make_grid(torch.cat([x0.cpu(), q.cpu(), diff, diff_map]), labels, ncol=4)
    result.info.update(model=m.name, original=orig, original_label=m.class_name(orig),
                       original_confidence=float(p0[orig]), target=cls, cls=new, label=m.class_name(new),
                       confidence=float(p1[new]), fooled=ok, epsilon=eps, linf=linf, l2=l2, report=report)
    result.figure, result.extras = panel, {"diff": diff[0], "diff_map": diff_map[0]}
    result.scores = p1[new:new + 1].cpu()
    result.labels = [f"{m.class_name(new)} p={float(p1[new]):.2f}"]
    return result
