"""Every spelling of a target (an int, a class name, a list or tensor of them, a callable, None)
and the CLI's target flags -> a :class:`~synthviz.targets.Target`, in one place."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from ..errors import BadValue, SynthvizError
from .core import Target, class_index, predicted
from .kinds import classes, in_mask, output_index, similar_to
from .text import text as text_target


def as_target(value=None, model=None) -> Target:
    """Any spelling of a target -> a :class:`Target`: the one place where targets are converted.

    ``None``: :func:`predicted`; a :class:`Target`: itself; a callable ``output -> (B,)`` (or
    ``(output, rows) -> (B,)``): wrapped; an int or a class name: :func:`class_index`; a list, tuple
    or tensor of them: one class per image (a single element: that class for every image).
    ``model`` (a :class:`~synthviz.models.Model`) reads class names and checks indices against its
    classes; without it, names are refused and indices are checked against the output."""
    owner = getattr(model, "name", None) or "the model"
    if isinstance(value, Target):
        return value
    if value is None:
        return predicted(owner)
    if callable(value) and not isinstance(value, torch.Tensor):
        return Target(value, getattr(value, "__name__", "target"))
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            raise BadValue(f"class targets are integers, not a {value.dtype} tensor")
        value = value.flatten().tolist()
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise BadValue("no class given; pass an index such as 285 or a name such as 'tabby'")
    idx = [_class_of(v, model) for v in items]
    return class_index(idx if len(idx) > 1 else idx[0], owner)


def _class_of(value, model) -> int:
    """One class (an index, a digit string or a name) -> its index."""
    if model is not None:
        return model.class_index(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str):
            raise BadValue(f"the class name '{value}' needs the model: pass model.class_index('{value}')")
        raise BadValue(f"a class is an index (int) or a name (str), not {type(value).__name__} {value!r}")
    return value


def from_options(model, *, cls: int | str | None = None, classes_: str | Sequence[int] | None = None,
                 output: int | None = None, similar: str | os.PathLike | None = None,
                 mask: str | os.PathLike | None = None, text: str | Sequence[str] | None = None,
                 versus: str | Sequence[str] | None = None):
    """The CLI's target flags (``--class``, ``--classes``, ``--output-index``, ``--similar-to``,
    ``--mask`` with ``--class``, ``--text`` once or one per image, ``--versus`` its contrast) -> a
    target (``--class`` alone: the class as given, for the techniques' class reports; nothing: None,
    the prediction)."""
    if versus and not text:
        raise SynthvizError("--versus needs --text: the prompt whose similarity the other one's is subtracted from")
    given = [n for n, v in (("--classes", classes_), ("--output-index", output), ("--similar-to", similar),
                            ("--mask", mask), ("--text", text or None)) if v is not None]
    if len(given) > 1:
        raise SynthvizError(f"give one of {', '.join(given)}, not several")
    if mask is not None:
        if cls is None:
            raise SynthvizError("--mask needs --class: the segmentation class whose scores are summed in the mask")
        return in_mask(model.class_index(cls), mask)
    if given and cls is not None:
        raise SynthvizError(f"--class and {given[0]} are different targets; give one")
    if classes_ is not None:
        parts = classes_.split(",") if isinstance(classes_, str) else classes_
        return classes([model.class_index(p.strip() if isinstance(p, str) else p) for p in parts if str(p).strip()])
    if output is not None:
        return output_index(int(output))
    if similar is not None:
        return similar_to(model, similar)
    if text:
        return text_target(model, text, versus or None)
    return cls
