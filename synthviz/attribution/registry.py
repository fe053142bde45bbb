"""The attribution-method registry: one decorated function per method, with all of its facts.

A method is ``fn(model, x, targets, **options) -> Attribution`` (``x``: (B, 3, H, W) in [0, 1] on
the model's device, ``targets``: a :class:`~synthviz.targets.Target` bound to the batch, read
through :func:`~synthviz.attribution.core.target_scores`). Its label, family, cost and aliases are
given once in :func:`register_method`; its default options are read from its own signature, so the
figure, the CLI, the presets and the sanity check can never disagree with the function::

    @register_method("gradient", label="gradient", family="gradient", cost="1 forward + 1 backward")
    def gradient(model, x, targets):
        ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..checks import in_range, non_negative, positive
from ..errors import SynthvizError, did_you_mean
from ..registry import Registry

# Options every method may be given; a method receives one only if its signature names it.
COMMON_OPTIONS: dict = {
    "layer": None,      # the layer of layer-based methods (None: the model's "gradcam" layer)
    "batch_size": 16,   # images per forward pass for the methods that expand each image
    "seed": 0,          # random draws (noise, masks, samples)
    "reduce": None,     # over colour: max (of |a|), abs (sum |a|), sum, none; None: the method's own
}


@dataclass(frozen=True)
class MethodInfo:
    """A registered attribution method and its facts.

    Attributes:
        name: the registered name. ``fn``: the function. ``label``: its caption in figures.
        family: gradient, guided, cam, perturbation, ... ``cost``: passes per image, in words
            (``"1 forward + 1 backward"``, ``"steps × (forward + backward)"``).
        needs_layer: takes a ``layer`` (CAM family). ``aliases``: other accepted names.
        lazy_target: the method's first forward is on the images themselves, so the predicted
            class (:func:`synthviz.targets.predicted`) is read from that forward instead of one more.
        defaults: {option: default} from ``fn``'s keyword arguments (derived, never written twice).
        in_all: part of ``"all"``; False for methods that work on some architectures only
            (the transformer methods need attention blocks), run when named.
    """

    name: str
    fn: Callable
    label: str
    family: str
    cost: str
    needs_layer: bool = False
    aliases: tuple = ()
    lazy_target: bool = False
    defaults: dict = field(default_factory=dict)
    in_all: bool = True


def method_defaults(fn: Callable) -> dict:
    """The keyword options of a method function with their defaults (after model, x, targets;
    names starting with ``_`` are internal)."""
    params = list(inspect.signature(fn).parameters.values())[3:]
    return {p.name: p.default for p in params
            if not p.name.startswith("_") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.default is not p.empty}


METHODS: Registry = Registry("saliency method", "use all or a comma list; `synthviz saliency --help` lists them")
_ALIASES: dict[str, str] = {}


def register_method(name: str, *, label: str, family: str, cost: str, aliases: Sequence[str] = (),
                    needs_layer: bool = False, lazy_target: bool = False, in_all: bool = True) -> Callable:
    """Register ``fn(model, x, targets, **options) -> Attribution`` as method ``name``."""

    def deco(fn: Callable) -> Callable:
        info = MethodInfo(name, fn, label, family, cost, needs_layer, tuple(aliases), lazy_target,
                          method_defaults(fn), in_all)
        METHODS.register(name)(info)
        for alias in aliases:
            if alias in _ALIASES and _ALIASES[alias] != name:
                raise SynthvizError(f"alias '{alias}' already names method '{_ALIASES[alias]}'")
            _ALIASES[alias] = name
        return fn

    return deco


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        known = list(METHODS) + list(_ALIASES)
        raise SynthvizError(f"unknown saliency method '{name.strip()}'{did_you_mean(key, known)}; "
                            f"use all or a comma list of: {', '.join(METHODS)}")
    return key


def method_names(methods: str | Sequence[str] | None = "all") -> list[str]:
    """``"all"`` -> every method in registration order (families in the package's order) but those
    registered with ``in_all=False`` (architecture-specific, run when named);
    ``"gradient,ig"`` -> ``["gradient", "integrated_gradients"]`` (aliases resolved, checked)."""
    if methods is None or methods == "all":
        return [n for n in METHODS if METHODS.get(n).in_all]
    if isinstance(methods, str):
        methods = methods.split(",")
    out = [_canonical(m) for m in methods if m.strip()]
    if not out:
        raise SynthvizError("no saliency method given; use all or a comma list such as gradient,gradcam")
    return list(dict.fromkeys(out))


def method_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of a method (aliases accepted)."""
    return METHODS.get(_canonical(name))


def option_defaults() -> dict:
    """Every option any method takes, plus the common ones, with its default; an option whose
    default differs between methods maps to None (each method then uses its own)."""
    out: dict = dict(COMMON_OPTIONS)
    seen: dict = {}
    for name in METHODS:
        for key, value in METHODS.get(name).defaults.items():
            if key in COMMON_OPTIONS:
                continue
            if key in seen and seen[key] != value:
                out[key] = None
            else:
                seen[key] = value
                out.setdefault(key, value)
    return out


def check_options(options: dict) -> dict:
    """Options with None values dropped (None: the method's default); a name that no method takes
    is a one-line error with suggestions."""
    known = option_defaults()
    for key in options:
        if key not in known:
            raise SynthvizError(f"unknown saliency option '{key}'{did_you_mean(key, known)}")
    options = {k: v for k, v in options.items() if v is not None}
    for key, value in options.items():  # values too, before any model is loaded
        if key in OPTION_CHECKS and isinstance(value, (int, float)):
            OPTION_CHECKS[key](key, value)
    return options


def _fill_value(name: str, value: float) -> float:
    return in_range(name, value, 0.0, 1.0)  # a pixel value: images are in [0, 1]


# the numeric options several methods share, checked by the same rules as every technique's
OPTION_CHECKS = {
    "samples": lambda n, v: positive(n, v, integer=True), "steps": lambda n, v: positive(n, v, integer=True),
    "window": lambda n, v: positive(n, v, integer=True), "stride": lambda n, v: positive(n, v, integer=True),
    "batch_size": lambda n, v: positive(n, v, integer=True), "noise": non_negative, "value": _fill_value,
}


def call_method(name: str, model, x, targets, options: dict):
    """Run one registered method with the options its signature takes (the rest are ignored; a
    ``_options`` parameter receives them all, for methods that call others)."""
    info = METHODS.get(name)
    params = inspect.signature(info.fn).parameters
    kwargs = {k: v for k, v in options.items() if k in params and not k.startswith("_")}
    if "_options" in params:
        kwargs["_options"] = options
    att = info.fn(model, x, targets, **kwargs)
    att.method = name
    return att
