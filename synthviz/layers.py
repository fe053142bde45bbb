"""Layer addressing, hooks and truncation.

Layers are named as in ``net.named_modules()`` (``"_blocks.8"``, ``"features.22"``); the
pseudo-layer ``"logits"`` is the model's output. A :class:`Tap` hooks only the layers asked
for, always removes its hooks, and stops the forward pass once the deepest of them has run,
so an objective on an early layer costs only the early layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from .errors import BadValue, SynthvizError, did_you_mean
from .models import Model
from .targets import main_output
from .tokens import spatial_view, spatial_view_and_back

LOGITS = "logits"


class _StopForward(Exception):
    """Raised from a hook once every needed layer has run: the rest of the network is skipped."""


def get_layer(model: Model, name: str) -> nn.Module:
    """The module called ``name`` in ``model.net``; an unknown name gets the closest real names."""
    modules = dict(model.net.named_modules())
    if name in modules and name != "":
        return modules[name]
    raise SynthvizError(
        f"unknown layer '{name}' in {model.name}{did_you_mean(name, [n for n in modules if n])}; "
        f"run `synthviz layers {model.name}` for the list"
    )


class Tap:
    """Capture named layers' outputs during forward passes.

    Use as a context manager, hooks live only inside it::

        with Tap(model, ["_blocks.5", "logits"]) as tap:
            acts = tap(images)          # images: (B, 3, H, W) in [0, 1]
            acts["_blocks.5"]           # (B, C, h, w)

    A module called several times in one pass (a shared activation) yields its first call.
    Fully connected outputs are (B, C) and act as channels. Token layers (B, N, C) and Swin's
    (B, H, W, C) come as their spatial view (B, C, h, w) (see :func:`synthviz.tokens.spatial_view`)
    unless ``spatial=False``; gradients (``grad``) are then taken with respect to that view.

    ``grad`` asks for gradients with respect to the captured outputs (run the pass with grad
    enabled, then ``torch.autograd.grad(score, acts[name])``):

    * ``"leaf"``: each captured output becomes a leaf that requires grad; the rest of the network
      runs on a copy, so the backward stops there (the cheapest way to get ∂score/∂A) and later
      in-place ops never change the tensor kept.
    * ``"through"``: the captured output stays in the graph (gradients also reach the layers
      before it); the rest of the network runs on a copy, for the same in-place safety.

    ``edit``: {layer: fn} replaces a layer's (first-call) output by ``fn(output)`` for the rest of
    the network (ablations, masks); it is applied after the capture, to the raw output.

    ``strict=False``: layers the forward pass never reaches are left out instead of being an
    error (listing shapes, finding the order blocks run in); the result keeps forward order.

    ``unfold=True``: a convolution whose batch norm the fused twin folded is read from the twin,
    its output mapped back through the batch norm's affine map (equal to float rounding, not
    bit for bit; see :class:`synthviz.fusion.Unfold`); edits are mapped forward again. Otherwise
    such a layer runs the original network, bit for bit.

    ``steady=True``: the caller promises the network does not change (weights, modules, hooks)
    while the Tap is open (a render): which network to run (:meth:`Model.runner`, a walk over
    every module and tensor) is chosen on the first pass and kept, not re-checked at every pass.
    """

    def __init__(self, model: Model, layers: Iterable[str], truncate: bool = True, grad: str | None = None,
                 edit: dict | None = None, strict: bool = True,
                 spatial: bool = True, unfold: bool = False, steady: bool = False):
        if grad not in (None, "leaf", "through"):
            raise ValueError(f"grad must be None, 'leaf' or 'through', not {grad!r}")
        self.model = model
        self.spatial = spatial
        self.unfold, self.steady = unfold, steady
        self._dtype = None  # the input dtype the hooked network was chosen for
        self._unfolds: dict = {}  # hooked folded convolutions of the fused twin -> their Unfold
        self._hw: tuple[int, int] = (0, 0)
        self.names = list(dict.fromkeys(layers))
        self.want_logits = LOGITS in self.names
        self.grad = grad
        self.strict = strict
        self.edit = dict(edit or {})
        self.hooked = [n for n in self.names if n != LOGITS]
        self.modules = {n: get_layer(model, n) for n in dict.fromkeys(self.hooked + list(self.edit))}
        self.truncate = truncate and not self.want_logits and grad is None and not self.edit
        # A captured output that later in-place ops (ReLU(inplace=True)) could overwrite is cloned;
        # the last captured layer never is, since the pass stops right after it.
        self._clone = any(getattr(m, "inplace", False) for m in model.net.modules())
        self._handles: list = []
        self._entered, self.net = False, None  # inside `with`; the network hooked
        self._edited: set = set()
        self._acts: dict[str, torch.Tensor] = {}

    def _view(self, name: str, tensor: torch.Tensor):
        """(the view objectives see, rebuild(view, raw) -> the raw layout) for ``name``'s output."""
        if not self.spatial:
            return tensor, lambda v, raw: v
        nhwc = self.model.channels_last is not None and self.model.channels_last(name)
        return spatial_view_and_back(tensor, self._hw, self.model.prefix_tokens, nhwc)

    def _hook(self, name: str):
        wanted = name in self.hooked

        def hook(module, inputs, output):
            if name in self._acts or name in self._edited:
                return None
            tensor = output if isinstance(output, torch.Tensor) else output[0] if isinstance(output, (tuple, list)) \
                and output else None  # (out, aux) style outputs
            if not isinstance(tensor, torch.Tensor):  # a dict of levels, a detector's image list: no map to read
                return None
            unfold, fused = self._unfolds.get(name), tensor
            if unfold is not None:  # the fused conv gave its batch norm's output: take the conv's own
                tensor = unfold.conv_output(tensor)
            passed = None
            if wanted and self.grad is not None:
                view, rebuild = self._view(name, tensor)
                if self.grad == "leaf":  # the leaf is the view; the rest runs on the raw layout of a copy
                    kept = view.detach().requires_grad_(True)
                    passed = rebuild(kept.clone(), tensor.detach())
                else:
                    kept = view
                    passed = rebuild(view.clone(), tensor)
                self._acts[name] = kept
            elif wanted:
                view = self._view(name, tensor)[0]
                last = len(self._acts) + 1 == len(self.hooked)
                if last and self.truncate:
                    self._acts[name] = view
                    raise _StopForward
                self._acts[name] = view.clone() if self._clone else view
            if name in self.edit:
                self._edited.add(name)
                passed = self.edit[name](tensor if passed is None else passed)
            if passed is not None and unfold is not None:  # back to the batch norm's output (F as it was, unedited)
                passed = unfold.fused_output(passed, None if name in self._edited else fused)
            if passed is None:
                return None
            return passed if isinstance(output, torch.Tensor) else (passed, *output[1:])

        return hook

    def __enter__(self) -> "Tap":
        self._edited: set = set()
        self._entered, self.net = True, None
        return self

    def _hook_net(self, images: torch.Tensor) -> nn.Module:
        """The network this pass runs on, hooked: the fused twin when it has these layers unchanged
        (see :meth:`Model.runner`), hooked by name; hooks move when the choice changes."""
        if self.steady and self.net is not None and images.dtype == self._dtype:
            return self.net
        self._dtype = images.dtype
        net = self.model.runner(images, list(self.modules), unfold=self.unfold)
        self._unfolds = self.model.unfolds(net) if self.unfold else {}
        if net is not self.net:
            self._unhook()
            self.net = net
            self._handles = [net.get_submodule(n).register_forward_hook(self._hook(n)) for n in self.modules]
        return net

    def _unhook(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __exit__(self, *exc) -> None:
        self._unhook()
        self._entered, self.net = False, None

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> {layer name: activation}."""
        if not getattr(self, "_entered", False) and self.modules:
            raise RuntimeError("Tap must be used inside a `with` block")
        self._acts, self._edited = {}, set()
        self._hw = self.model.input_hw(images)
        try:
            with self.model.evaluating():  # (the twin is built, if at all, in eval mode)
                net = self._hook_net(images)
                logits = self.model(images, net=net)
        except _StopForward:
            logits = None
        except RuntimeError as e:
            if "size" in str(e).lower() and min(images.shape[-2:]) < 64:
                raise SynthvizError(
                    f"image size {min(images.shape[-2:])} is too small for {self.model.name}; use a larger --size"
                ) from None
            raise
        if self.want_logits:
            self._acts[LOGITS] = logits
        missing = [n for n in self.names if n not in self._acts]
        if missing and self.strict:
            raise SynthvizError(f"layer '{missing[0]}' is not used in {self.model.name}'s forward pass; pick another layer")
        acts, self._acts = self._acts, {}
        return acts


def view_of(model: Model, layer: str, output: torch.Tensor, input_hw: tuple[int, int]) -> torch.Tensor:
    """``layer``'s output as the spatial view objectives and CAM methods see (B, C, h, w)."""
    nhwc = model.channels_last is not None and model.channels_last(layer)
    return spatial_view(output, input_hw, model.prefix_tokens, nhwc)


def capture(model: Model, images: torch.Tensor, layers: Sequence[str], truncate: bool = True,
            grad: bool = False) -> dict[str, torch.Tensor]:
    """One forward pass returning the activations of ``layers`` (no gradient unless ``grad``)."""
    with Tap(model, layers, truncate) as tap, torch.set_grad_enabled(grad):
        return tap(images.to(model.device))


def layer_shape(model: Model, layer: str, size: int = 224) -> tuple[int, ...]:
    """The output shape of ``layer`` (batch dimension dropped) for a ``size`` x ``size`` input."""
    x = torch.zeros(1, 3, size, size, device=model.device)
    return tuple(capture(model, x, [layer])[layer].shape[1:])


def layer_shapes(model: Model, size: int = 224, spatial: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """Every named module with its output shape, in the order the forward pass runs them
    (``spatial``: token and channels-last layers as their (C, h, w) view; the model's output last)."""
    names = [n for n, _ in model.net.named_modules() if n]
    with torch.no_grad(), Tap(model, names + [LOGITS], truncate=False, strict=False, spatial=spatial) as tap:
        acts = tap(torch.zeros(1, 3, size, size, device=model.device))
    out = acts.pop(LOGITS, None)
    shapes = {n: tuple(a.shape[1:]) for n, a in acts.items()}
    out = main_output(out) if out is not None else None
    shapes[LOGITS] = (model.num_classes,) if model.num_classes else (
        tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ())
    return list(shapes.items())


def check_unit(model: Model, layer: str, channel: int, size: int,
               x: int | None = None, y: int | None = None) -> tuple[int, ...]:
    """Check a channel (and neuron position) against the layer's shape; returns the shape."""
    shape = layer_shape(model, layer, size) if layer != LOGITS else (model.num_classes,)
    if not 0 <= channel < shape[0]:
        raise SynthvizError(f"channel {channel} is out of range for layer '{layer}' ({shape[0]} channels): use 0..{shape[0] - 1}")
    if (x is not None or y is not None) and len(shape) == 3:
        h, w = shape[1:]
        x, y = (w // 2 if x is None else x), (h // 2 if y is None else y)  # default: the centre
        if not (0 <= x < w and 0 <= y < h):
            raise SynthvizError(f"neuron ({x}, {y}) is outside layer '{layer}' ({w}x{h} at size {size}): "
                                f"use x 0..{w - 1}, y 0..{h - 1}")
    return shape


def parse_units(units: str | int | Sequence[int] | None, count: int) -> list[int]:
    """``None``/``"all"`` -> every channel; ``"0,3,8-11"`` -> [0, 3, 8, 9, 10, 11]; checked against ``count``."""
    if units is None or units == "all":
        return list(range(count))
    if isinstance(units, int) and not isinstance(units, bool):
        units = [units]
    if isinstance(units, str):
        out: list[int] = []
        fix = "write them like 0,3,8-11 or all"
        for part in units.split(","):
            part = part.strip()
            try:
                a, b = part.split("-", 1) if "-" in part[1:] else (part, part)
                a, b = (int(a), int(b)) if part else (0, -1)
            except ValueError:
                raise BadValue(f"cannot read units '{units}'; {fix}") from None
            if part and b < a:
                raise BadValue(f"units range '{part}' runs backwards; write it low-high, e.g. {b}-{a}")
            out += list(range(a, b + 1))
        if not out:
            raise BadValue(f"no units in '{units}'; {fix}")
        units = out
    if not isinstance(units, Sequence) or not units or not all(isinstance(u, int) and not isinstance(u, bool)
                                                               for u in units):
        raise BadValue(f"units must be an index, a list of indices, '0,3,8-11' or 'all', not {units!r}")
    for u in units:
        if not 0 <= u < count:
            raise SynthvizError(f"channel {u} is out of range for this layer ({count} channels): use 0..{count - 1}")
    return list(units)


def stage_layers(model: Model, size: int = 224) -> list[str]:
    """The last layer of each spatial resolution (the network's stages), shallow to deep.

    Used for per-model defaults when a model declares none.
    """
    shapes = [(n, s) for n, s in layer_shapes(model, size, spatial=True) if len(s) == 3 and n != LOGITS]
    res = {n: s[1:] for n, s in shapes}
    # a "block" never mixes resolutions: containers spanning stages are skipped
    blocks = [n for n, _ in shapes
              if all(res[d] == res[n] for d in res if d.startswith(n + "."))]
    stages: dict[tuple, str] = {}
    for n in blocks:
        stages[res[n]] = n  # later in execution order wins
    return list(stages.values())


def default_layer(model: Model, role: str) -> str | list[str]:
    """A model's layer for a role: ``mid``, ``early``, ``content``, ``gradcam`` or ``style`` (a list)."""
    if role in model.layers:
        return model.layers[role]
    stages = stage_layers(model)
    if not stages:
        raise SynthvizError(f"{model.name} has no convolutional stages; pass --layer explicitly")
    pick = {
        "early": stages[min(1, len(stages) - 1)],
        "mid": stages[len(stages) // 2],
        "content": stages[max(0, len(stages) - 2)],
        "gradcam": stages[-1],
        "style": stages[:5],
    }
    if role not in pick:
        raise SynthvizError(f"unknown layer role '{role}'{did_you_mean(role, pick)}")
    return pick[role]
