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
from ..targets import Target, main_output
from .scoped import activation_mode

PREDICTED = -1  # a target still to be read from the model's prediction (see target_scores)


@dataclass
class Attribution:
    """One method's answer for a batch.

    Attributes:
        maps: (B, 1, H, W) — one value per pixel (``reduce="none"``: (B, 3, H, W)).
        raw: the method's own output before reduction: (B, 3, H, W) signed attributions for the
            pixel-space methods, (B, 1, h, w) the pre-ReLU map at the layer for the CAM family.
        targets: the class explained, per image. ``display``: ``"abs"`` or ``"positive"`` — what a
            heatmap shows. ``info``: method extras (IG completeness gap, the CAM layer...).
        reduction: the :data:`REDUCTIONS` entry that made ``maps`` from ``raw``, or None.
        scores: (B,) the target's score on the images, when the method computed it.
    """

    maps: torch.Tensor
    raw: torch.Tensor
    method: str = ""
    targets: list[int] = field(default_factory=list)
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

def resolve_targets(model: Model, images: torch.Tensor, target=None, lazy: bool = False):
    """(B,) class indices: the prediction where ``target`` is None, else an index/name or one per
    image. ``lazy``: leave :data:`PREDICTED` for a missing target instead of running a forward
    (the method's own first forward on ``images`` fills it in, see :func:`target_scores`).

    Any other target (a :class:`synthviz.targets.Target` or a callable ``output -> (B,)``: several
    classes, a regression output, an embedding similarity, a masked segmentation score) comes back
    as a :class:`~synthviz.targets.Target` bound to the batch; it indexes and repeats like the tensor."""
    b = len(images)
    if isinstance(target, Target) or (callable(target) and not isinstance(target, (torch.Tensor, str))):
        return targets_mod.resolve(model, images, target)
    if target is None:
        if lazy:
            return torch.full((b,), PREDICTED, device=images.device, dtype=torch.long)
        with torch.no_grad():
            return _class_scores(main_output(model(images))).argmax(1)
    idx = targets_mod.class_indices(model, images, target)
    return torch.tensor(idx * b if len(idx) == 1 else idx, device=images.device, dtype=torch.long)


def _class_scores(output: torch.Tensor) -> torch.Tensor:
    """(B, K) scores; a (B, K, H, W) segmentation output's class scores summed over the pixels."""
    return output.flatten(2).sum(-1) if output.dim() > 2 else output.flatten(1)


def target_scores(output, targets) -> torch.Tensor:
    """The score each image is explained by: the model output and (B,) targets -> (B,).

    ``targets``: class indices (B,) long, or a :class:`~synthviz.targets.Target` (called on the
    output). Class targets still :data:`PREDICTED` become the argmax of this output, written into
    ``targets`` in place (so the caller learns them without another forward). A dict/tuple output
    is read as its main tensor; a segmentation output's class score is summed over the pixels."""
    if isinstance(targets, Target):
        return targets(output)
    output = _class_scores(main_output(output))
    pending = targets < 0
    if bool(pending.any()):
        targets[pending] = output.detach().argmax(1)[pending]
    return output.gather(1, targets[:, None])[:, 0]


def pending_targets(targets) -> bool:
    """Class targets still to be read from the prediction."""
    return isinstance(targets, torch.Tensor) and bool((targets < 0).any())


def scores_of(model: Model, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
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
    """The layer's (B, C, h, w) output, no gradient; the forward stops at the layer."""
    with Tap(model, [layer]) as tap, torch.no_grad():
        return check_spatial(model, layer, tap(x)[layer])


def layer_activation_and_grad(model: Model, x: torch.Tensor, targets: torch.Tensor, layer: str,
                              mode: contextlib.AbstractContextManager | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward and one backward that stops at ``layer``: (A (B, C, h, w), ∂score/∂A, scores (B,)).
    The layer's shape is checked on this very forward (no extra pass)."""
    with Tap(model, [layer, LOGITS], grad="leaf") as tap, torch.enable_grad(), (mode or contextlib.nullcontext()):
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
    """Yields ``advance(n)``; a transient rich bar on stderr when it is a terminal and ``total`` is large."""
    from rich.console import Console

    console = Console(stderr=True)
    if total < BAR_MIN_BATCHES or not console.is_terminal:
        yield lambda n=1: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.update(task, advance=n)



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
        from ..techniques.common import get_image

        base = get_image(baseline, what="baseline")
    return resize(base.to(x.device), tuple(x.shape[-2:])).expand_as(x)


def as_batch(images, size: int | None = None) -> torch.Tensor:
    """Paths / a list of paths or tensors / a (B, 3, H, W) or (3, H, W) tensor -> (B, 3, H, W) in
    [0, 1] (see :func:`synthviz.io.as_image`, the one validator)."""
    return as_image(images, size, "image", batch=True)
