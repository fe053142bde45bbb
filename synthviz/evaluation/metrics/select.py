"""The registered metrics as ``evaluate`` asks for them: ``--metrics NAME,...`` checked against the
registry (one line, with a did-you-mean), ``--metric-option KEY=VALUE`` given to every chosen metric
that takes that option, and one image's scores for one method (:func:`score_metrics`)."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence

import torch

from ...errors import BadValue
from .registry import metric_info, score

RESERVED = ("explain", "explain_options")  # evaluate explains with the method under test itself


def parse_metrics(metrics: str | Sequence[str] | None) -> list[str]:
    """``"sparseness,Pointing-Game"`` or a list -> registered names in order, once each;
    ``None``, ``""`` or ``"none"`` -> none. An unknown name is a one-line error naming the closest."""
    items = (metrics or "").split(",") if isinstance(metrics, str) or metrics is None else list(metrics)
    items = [m.strip() for m in items if m and m.strip()]
    if [m.lower() for m in items] == ["none"]:
        return []
    out = []
    for m in items:
        name = metric_info(m).name
        if name not in out:
            out.append(name)
    return out


def parse_value(text: str):
    """An option's value from the command line: a Python literal (``3``, ``0.1``, ``(1, 5)``),
    ``true``/``false``/``none`` in any case, else the text itself (``black``, ``pearson``)."""
    word = text.strip()
    low = word.lower()
    if low in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[low]
    try:
        return ast.literal_eval(word)
    except (ValueError, SyntaxError):
        return word


def parse_options(options: Sequence[str] | dict | None) -> dict:
    """``["k=100", "abs=true"]`` (``--metric-option``, repeatable) or a dict -> {option: value}."""
    if options is None:
        return {}
    if isinstance(options, dict):
        return dict(options)
    out = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadValue(f"--metric-option takes KEY=VALUE (e.g. features_in_step=64), not {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def options_per_metric(metrics: Sequence[str], options: dict) -> dict[str, dict]:
    """{metric: the options it takes}: each option goes to every chosen metric that has it; an
    option none of them takes is a one-line error listing what they take."""
    taken = {m: {k: v for k, v in options.items() if k in metric_info(m).defaults} for m in metrics}
    unused = sorted(k for k in options if not any(k in t for t in taken.values()))
    if unused:
        known = sorted({k for m in metrics for k in metric_info(m).defaults} - set(RESERVED))
        why = "evaluate explains with each method itself; " if set(unused) & set(RESERVED) else ""
        raise BadValue(f"no chosen metric takes the option {', '.join(unused)}; {why}"
                       f"{'their options are ' + ', '.join(known) if known else 'choose metrics with --metrics'}")
    return taken


def checked(metrics: str | Sequence[str] | None, options: Sequence[str] | dict | None) -> tuple[list[str], dict]:
    """(metric names, {metric: options}) from what a user gives, checked before any work."""
    names = parse_metrics(metrics)
    return names, options_per_metric(names, parse_options(options))


def column(name: str, taken: Sequence[str]) -> str:
    """The CSV column of metric ``name``: its name, or ``name_quantus`` where a built-in column of
    ``evaluate`` already has that name (``pointing_game``, ``max_sensitivity``)."""
    return f"{name}_quantus" if name in taken else name


def score_metrics(model, images: torch.Tensor, maps: torch.Tensor, target, metrics: dict[str, dict],
                  mask: torch.Tensor | None = None, explain: Callable | None = None) -> dict[str, float | None]:
    """{metric: the mean over the batch} for maps (B, 1, H, W) of images (B, C, H, W) (B > 1: draws
    of a random reference). A metric whose ground truth (``mask`` (1, 1, H, W)) or explainer is
    missing gets None. ``explain`` made ``maps`` on ``model``: a metric that would draw them again
    (an ``original`` option) reads them instead."""
    out: dict[str, float | None] = {}
    for name, options in metrics.items():
        info = metric_info(name)
        if ("masks" in info.needs and mask is None) or ("explain" in info.needs and explain is None):
            out[name] = None
            continue
        masks = None if mask is None else mask.expand(len(images), *mask.shape[1:])
        extra = {"explain": explain} if "explain" in info.needs else {}
        if "original" in info.defaults and "original" not in options:
            extra["original"] = "maps"
        values = [float(v) for v in score(model, images, maps, target, metric=name, masks=masks, **extra, **options)]
        finite = [v for v in values if math.isfinite(v)]
        out[name] = sum(finite) / len(finite) if finite else float("nan")
    return out
