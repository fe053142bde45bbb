"""The one optimization loop behind every technique.

``render`` optimizes an image parameterization so that ``objective`` (a value per batch element)
rises, through the model, with optional robustness transforms and between-step operations.
Class visualization, neuron probing, fooling images, DeepDream, feature inversion, texture
synthesis and style transfer are all recipes that call it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch

from .callbacks import Callback, ProgressBar, StepInfo
from .layers import Tap
from .checks import non_negative
from .device import resolve_device, seeded
from .models import Model, load_model
from .objectives import Context, Objective
from .optimizers import make_optimizer
from .params import ImageParam
from .result import Result
from .transforms import Transform, identity

StepOp = Callable[[ImageParam, int], None]


class _NonFinite(Exception):
    """The objective turned NaN/inf: stop and keep the last good image."""


class RenderInterrupted(KeyboardInterrupt):
    """Ctrl-C during a render (or any technique); ``.result`` holds the image(s) as they stood,
    ``.extra`` whatever else a technique kept (the saliency figure's finished maps)."""

    def __init__(self, result: Result, extra=None):
        super().__init__("render interrupted")
        self.result = result
        self.extra = extra


def render(model: Model | str, objective: Objective, param: ImageParam | Callable[[], ImageParam], *,
           transforms: Transform | None = None, step_ops: Sequence[StepOp] = (),
           optimizer: str | torch.optim.Optimizer = "adam", lr: float = 0.05, steps: int = 256,
           schedule: Callable[[int], float] | None = None, snapshots: Sequence[int] = (), frame_every: int = 0,
           callbacks: Sequence[Callback] = (), seed: int | None = 0, device: str | torch.device | None = None,
           progress: bool | str = False, tile: int | None = None) -> Result:
    """Optimize ``param`` to maximise ``objective``.

    Args:
        model: a :class:`Model` (or a name for :func:`load_model`); its parameters are frozen
            for the render, so no weight gradient is ever computed. The network is taken as
            fixed for the render (the fused twin is chosen once, not re-checked every step).
        objective: what to maximise; only the layers it names are hooked, and the forward pass
            stops after the deepest of them.
        param: an image parameterization, or a function that makes one (it is then made under
            the seed, so the start is reproducible too).
        transforms: robustness transforms applied before each forward pass. A transform may
            return k views of each image (a batch of k·B, view-major, as ``random_crops(n=k)``):
            each image's value is then the mean of its views' values.
        step_ops: operations on the parameterization after each step ``op(param, step)``.
        optimizer: ``adam``, ``lbfgs``, ``sgd``, ``l2step``, ``meanabs``, ``sign`` or an optimizer.
        lr, steps: learning rate and number of steps; ``schedule(step)`` multiplies the rate.
        snapshots: steps at which to keep the image; ``frame_every``: keep a frame every k steps.
        callbacks: ``cb(StepInfo) -> bool``; returning True stops early.
        seed: makes the render reproducible (``None``: use the global RNG as it is).
        device: ``None`` keeps the model's device; ``"auto"`` means CUDA when present. The model
            is moved there for the render only and given back on the device it was found on.
        progress: show a progress bar (a string is its label).
        tile: compute the gradient tile by tile (tiles of ``tile`` px, after the transforms) so
            memory is bounded by the tile, not the image (DeepDream on large photos); the
            objective is then summed over tiles.

    Returns:
        A :class:`Result`. Raises :class:`RenderInterrupted` on Ctrl-C, carrying the
        image as it stood. If the objective turns NaN/inf the last good image is kept, the
        result says ``stopped="nan"`` and a warning is issued.
    """
    model = load_model(model)
    steps = non_negative("steps", steps, integer=True)
    if not isinstance(optimizer, torch.optim.Optimizer):
        lr = non_negative("lr", lr)  # 0 is allowed here (a gradient probe); techniques ask for > 0
    dev = resolve_device(device) if device is not None else model.device
    callbacks = list(callbacks)
    if progress:
        callbacks.append(ProgressBar(steps, progress if isinstance(progress, str) else objective.name))

    with on_device(model, dev), seeded(seed, dev), model.evaluating(), \
            Tap(model, objective.layers, steady=True) as tap, \
            contextlib.ExitStack() as stack:
        for cb in callbacks:
            if hasattr(cb, "__enter__"):
                stack.enter_context(cb)
        param = (param() if not isinstance(param, ImageParam) else param).to(dev)
        run = _Optimization(param, _Scorer(objective, tap, transforms or identity, tile), optimizer, lr, schedule)
        try:
            run.loop(steps, step_ops, callbacks, frame_every, snapshots)
            if run.stopped == "nan":  # warned here, so that the warning points at render's caller
                warnings.warn(f"objective {objective.name} turned NaN/inf at step {run.step}: "
                              "kept the last good image; try a lower learning rate", stacklevel=2)
        except KeyboardInterrupt:
            run.restore_if_blown()
            raise RenderInterrupted(run.result()) from None
        return run.finish(frame_every)


class _Scorer:
    """The objective's values (B,) for one image batch: transforms, forward pass through the
    tap, views averaged (or tiles summed); the loss -sum(values) is backpropagated."""

    def __init__(self, objective: Objective, tap: Tap, transforms: Transform, tile: int | None):
        self.objective, self.tap, self.transforms, self.tile = objective, tap, transforms, tile

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(values (B,), loss) for ``image`` (B, 3, H, W); a tiled score has already backpropagated
        into ``image``'s graph."""
        x = self.transforms(image)
        if not self.objective.layers:  # reads the image only (penalties, tiled statistics): no forward pass
            v = self.objective(Context(image, {}))
        elif self.tile and max(x.shape[-2:]) > self.tile:
            v = _tiled_backward(x, self.tile, lambda t: self.objective(Context(t, self.tap(t))))  # see Context.image
        else:
            v = score_views(self.objective, image, self.tap(x))
        return v, -v.sum()


class _Optimization:
    """One render's steps: the optimizer over ``param``, the values of the current step, and what is
    kept (history, frames, snapshots, the last parameters whose image scored finite)."""

    def __init__(self, param: ImageParam, scorer: _Scorer, optimizer: str | torch.optim.Optimizer, lr: float,
                 schedule: Callable[[int], float] | None):
        self.param, self.scorer = param, scorer
        self.opt = make_optimizer(optimizer, param.parameters(), lr)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, schedule) if schedule else None
        self.history: list[torch.Tensor] = []
        self.frames: list[torch.Tensor] = []
        self.shots: dict[int, torch.Tensor] = {}
        self.params = list(param.parameters())
        self.last_good = [p.detach().clone() for p in self.params]  # one preallocated copy, refreshed each step
        self.stopped, self.step, self.values = None, 0, None

    def closure(self) -> torch.Tensor:
        """The optimizer's closure: the loss of the current image, its gradient computed."""
        self.opt.zero_grad(set_to_none=True)
        v, loss = self.scorer(self.param())
        if self.values is None:  # the first evaluation of a step (L-BFGS makes several)
            if not torch.isfinite(v).all():
                raise _NonFinite
            self.values = v.detach()
            for saved, p in zip(self.last_good, self.params):  # this image scored fine: it is the last good one
                saved.copy_(p.detach())
        if loss.requires_grad:
            loss.backward()
        return loss

    def loop(self, steps: int, step_ops: Sequence[StepOp], callbacks: Sequence[Callback], frame_every: int,
             snapshots: Sequence[int]) -> None:
        """Run up to ``steps`` steps; ``self.step`` ends as the number of steps taken, ``self.stopped``
        as ``"nan"`` (the last good image restored), ``"early"`` (a callback) or None."""
        for step in range(steps):
            self.step = step
            if not self._optimizer_step():
                return
            self._after_step(step_ops, frame_every, snapshots)
            info = StepInfo(step, self.values, self.param, steps)
            if any([bool(cb(info)) for cb in callbacks]):  # a list: every callback sees every step
                self.stopped, self.step = "early", step + 1
                return
        self.step = steps

    def _optimizer_step(self) -> bool:
        """One optimizer step; False (and the last good image back) if the objective turned NaN/inf."""
        self.values = None
        try:
            self.opt.step(self.closure)
        except _NonFinite:
            _restore(self.param, self.last_good)
            self.stopped = "nan"
            return False
        return True

    def _after_step(self, step_ops: Sequence[StepOp], frame_every: int, snapshots: Sequence[int]) -> None:
        """Project, apply the step operations, advance the schedule and keep the step's values and images."""
        self.param.project()
        for op in step_ops:
            op(self.param, self.step)
        if self.sched:
            self.sched.step()
        self.history.append(self.values.cpu())
        if frame_every and self.step % frame_every == 0:
            self.frames.append(self.param.image().cpu())
        if self.step in snapshots:
            self.shots[self.step] = self.param.image().cpu()

    def restore_if_blown(self) -> None:
        """Give back the last good parameters if the last update made them NaN/inf."""
        if not all(torch.isfinite(p).all() for p in self.params):
            _restore(self.param, self.last_good)

    def finish(self, frame_every: int) -> Result:
        self.restore_if_blown()
        if frame_every:
            self.frames.append(self.param.image().cpu())
        return self.result()

    def result(self) -> Result:
        return Result(self.param.image().cpu(), torch.stack(self.history) if self.history else torch.empty(0),
                      self.scorer.objective.name, self.step, self.stopped, self.frames, self.shots, param=self.param,
                      optimizer=self.opt)


def score_views(objective: Objective, image: torch.Tensor, acts: dict) -> torch.Tensor:
    """``objective``'s values (B,) for ``image`` (B, 3, H, W) from the activations ``acts`` of its
    transformed batch. When the transforms made k views of each image (a batch of k·B in which
    row j·B + i is view j of image i), the objective scores each group of B views and the k
    values of an image are averaged, so batch-indexed objectives keep pointing at their image."""
    b = image.shape[0]
    n = next((c for c in map(_batch_of, acts.values()) if c is not None), b)
    if n == b:
        return objective(Context(image, acts))
    if n % b:
        raise ValueError(f"the transforms made {n} images from {b}; a transform returns k views per image (k·B)")
    k = n // b
    return sum(objective(Context(image, _rows(acts, slice(j * b, (j + 1) * b)))) for j in range(k)) / k


def _batch_of(value) -> int | None:
    """The images in one recorded output: a detector's list of per-image dicts counts its dicts."""
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, dict) for v in value):
        return len(value)
    t = _first_tensor(value)
    return None if t is None else len(t)


def _first_tensor(value) -> torch.Tensor | None:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return next((t for t in map(_first_tensor, value) if t is not None), None)
    return value if isinstance(value, torch.Tensor) else None


def _rows(value, rows: slice):
    """``value``'s batch rows ``rows``: a tensor, or the tensors inside a dict, tuple or list of outputs."""
    if isinstance(value, torch.Tensor):
        return value[rows]
    if isinstance(value, dict):
        return {key: _rows(v, rows) for key, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_rows(v, rows) for v in value)
    return value


def _tiled_backward(x: torch.Tensor, tile: int, score: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Backpropagate ``score`` tile by tile: only one tile's activations live at a time.
    Returns the summed per-element values; ``x``'s graph receives the assembled gradient."""
    xd = x.detach().requires_grad_(True)
    h, w = x.shape[-2:]
    total = torch.zeros(x.shape[0], device=x.device)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            v = score(xd[..., top : top + tile, left : left + tile])
            (-v.sum()).backward()
            total += v.detach()
    x.backward(xd.grad)
    return total


@contextlib.contextmanager
def on_device(model: Model, device: torch.device) -> Iterator[Model]:
    """Move ``model`` to ``device`` for the duration and give it back where it was found."""
    home = model.device
    if device == home:
        yield model
        return
    model.to(device)
    try:
        yield model
    finally:
        model.to(home)


@torch.no_grad()
def _restore(param: ImageParam, saved: list[torch.Tensor]) -> None:
    for p, s in zip(param.parameters(), saved):
        p.copy_(s)
