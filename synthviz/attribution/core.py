"""What every attribution method shares: the answer type, targets and scores, input and layer
gradients (recorded through :class:`synthviz.layers.Tap`), baselines and batching helpers.

Every method gets its scalar score through :func:`target_scores` (never by indexing the logits
itself), so what a "target" is can grow in one place.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import SynthvizError
from ..io import as_image, load_image, resize
from .. import targets as targets_mod
from ..layers import LOGITS, Tap, default_layer
from ..models import Model
from ..progress import progress as progress_bar
from ..targets import Target, main_output
from .scoped import activation_mode


@dataclass
class Attribution:
    """One method's answer for a batch.

    Attributes:
        maps: (B, 1, H, W) — one value per pixel (``reduce="none"``: (B, 3, H, W)).
        raw: the method's own output before reduction: (B, 3, H, W) signed attributions for the
            pixel-space methods, (B, 1, h, w) the pre-ReLU map at the layer for the CAM family.
        targets: the class explained, per image (a target that is not one class: its name).
            ``display``: ``"abs"`` or ``"positive"`` — what a heatmap shows. ``info``: method
            extras (IG completeness gap, the CAM layer...).
        reduction: the :data:`REDUCTIONS` entry that made ``maps`` from ``raw``, or None.
        scores: (B,) the target's score on the images, when the method computed it.
    """

    maps: torch.Tensor
    raw: torch.Tensor
    method: str = ""
    targets: list = field(default_factory=list)
    display: str = "abs"
    info: dict = field(default_factory=dict)
    reduction: str | None = None
    scores: torch.Tensor | None = None


REDUCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "max": lambda a: a.abs().amax(1, keepdim=True),
    "abs": lambda a: a.abs().sum(1, keepdim=True),
    "sum": lambda a: a.sum(1, keepdim=True),
    "none": lambda a: a,
}


# --------------------------------------------------------------------------- targets and scores

def resolve_targets(model: Model, images: torch.Tensor, target=None, lazy: bool = False) -> Target:
    """Any target spelling (:func:`synthviz.targets.as_target`) bound to the batch ``images``
    (B, 3, H, W): a :class:`~synthviz.targets.Target` that indexes and repeats like a (B,) tensor
    of class indices (``tolist()``: the class per image, or the target's name).

    The predicted class (``target`` None) is read with one no-grad forward now, or with ``lazy``
    from the method's own first forward on ``images`` (see :func:`read_prediction`)."""
    t = targets_mod.as_target(target, model)
    t = t.for_batch(len(images)) if t.rows is None else t
    return t if lazy else read_prediction(model, images, t)


def read_prediction(model: Model, images: torch.Tensor, targets) -> Target:
    """A target still waiting for an output (the predicted class) reads it from one no-grad forward
    on ``images``; any other target is returned as it is."""
    if isinstance(targets, Target) and targets.pending:
        with torch.no_grad():
            targets(model(images))
    return targets


def bound(targets, n: int) -> Target:
    """A method's ``targets`` as a Target for ``n`` rows: a Target as it is; class indices (an int, a
    list or a (B,) tensor, as methods were once called) through :func:`synthviz.targets.as_target`."""
    return targets if isinstance(targets, Target) else targets_mod.as_target(targets).for_batch(n)


def target_scores(output, targets) -> torch.Tensor:
    """The score each image is explained by: the model output and its targets -> (B,).

    ``targets``: a :class:`~synthviz.targets.Target` (called on the output) or class indices (B,).
    A dict/tuple output is read as its main tensor; a segmentation output's class score is summed
    over the pixels. The predicted class is read from the first output a target sees."""
    if isinstance(targets, Target):
        return targets(output)
    return bound(targets, main_output(output).shape[0])(output)


def class_ids(targets, n: int) -> torch.Tensor:
    """(n,) long on the CPU: the class of each row of ``targets`` (a class target, once it has seen
    its output)."""
    return bound(targets, n).class_ids()


def scores_of(model: Model, x: torch.Tensor, targets) -> torch.Tensor:
    """(B, 3, H, W) -> the target scores (B,), one forward (no gradient unless enabled)."""
    return target_scores(model(x), targets)


# --------------------------------------------------------------------------- gradients

def input_gradient(model: Model, x: torch.Tensor, targets: torch.Tensor,
                   mode: contextlib.AbstractContextManager | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """∂score/∂x for each image: (grad (B, 3, H, W), scores (B,)). ``mode``: a torch-function mode
    changing the activations' backward, active during the forward (inside the activation modules
    only, where that is enough: :func:`~synthviz.attribution.scoped.activation_mode`)."""
    x = x.detach().requires_grad_(True)
    net = model.runner(x)
    with torch.enable_grad(), (activation_mode(mode, net) if mode else contextlib.nullcontext()):
        scores = target_scores(model(x, net=net), targets)
    (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad, scores.detach()


def check_layer_name(model: Model, layer: str | None, role: str = "gradcam") -> str:
    """The layer to use (None: the model's ``role`` layer); ``logits`` is refused without a forward."""
    layer = layer or default_layer(model, role)
    if layer == LOGITS:
        raise SynthvizError(f"layer 'logits' is not convolutional; this method needs a layer with a spatial "
                            f"map, e.g. --layer {default_layer(model, role)}")
    return layer


def check_spatial(model: Model, layer: str, act: torch.Tensor) -> torch.Tensor:
    """``act`` if it is a (B, C, h, w) map, else a one-line error naming a layer that is."""
    if act.dim() != 4:
        raise SynthvizError(f"layer '{layer}' is not convolutional (its output is {tuple(act.shape[1:])}); "
                            f"this method needs a layer with a spatial map, e.g. --layer "
                            f"{default_layer(model, 'gradcam')}")
    return act


def layer_activation(model: Model, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The layer's (B, C, h, w) output, no gradient; the forward stops at the layer (on the fused
    twin at a folded convolution too: ``Tap(..., unfold=True)``)."""
    with Tap(model, [layer], unfold=True) as tap, torch.no_grad():
        return check_spatial(model, layer, tap(x)[layer])


def layer_activation_and_grad(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str,
                              mode: contextlib.AbstractContextManager | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward and one backward that stops at ``layer``: (A (B, C, h, w), ∂score/∂A, scores (B,)).
    The layer's shape is checked on this very forward (no extra pass); a folded convolution is read
    from the fused twin (``Tap(..., unfold=True)``: equal to float rounding)."""
    with Tap(model, [layer, LOGITS], grad="leaf", unfold=True) as tap, torch.enable_grad(), \
            (mode or contextlib.nullcontext()):
        acts = tap(x.detach())
        act = check_spatial(model, layer, acts[layer])
        scores = target_scores(acts[LOGITS], targets)
    (grad,) = torch.autograd.grad(scores.sum(), act)
    return act.detach(), grad, scores.detach()


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, H, W), bilinear (the CAM family's upsampling)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- inputs and batching

BAR_MIN_BATCHES = 8  # fewer batches than this: no progress bar


@contextlib.contextmanager
def progress(total: int, label: str) -> Iterator:
    """Yields ``advance(n)``: a transient bar (:mod:`synthviz.progress`), drawn only on a terminal
    and when ``total`` is large."""
    with progress_bar(total, label, transient=True, enabled=total >= BAR_MIN_BATCHES) as bar:
        yield bar.advance


def chunks(n: int, size: int) -> Iterator[slice]:
    """Slices of ``range(n)`` of at most ``size`` items."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


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
        base = as_image(baseline, what="baseline")
    return resize(base.to(x.device), tuple(x.shape[-2:])).expand_as(x)

