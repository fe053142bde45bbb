"""Does a value from a TOML file (a preset, a gallery spec, ``--set``) fit a technique's type hint?

Types come from ``typing.get_type_hints``; strings stand for paths, images and models, which a
file can only name.
"""

from __future__ import annotations

import collections.abc
import inspect
import os
import types
import typing
from pathlib import Path

import torch


def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def accepts(tp, value) -> bool:
    """Whether a TOML ``value`` fits annotation ``tp`` (strings stand for paths, images and models)."""
    if tp is None or tp is typing.Any or tp is inspect.Parameter.empty:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        return any(accepts(a, value) for a in args)
    if origin is typing.Literal:
        return value in args
    if tp is type(None):
        return value is None
    if origin in (list, tuple, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection):
        if not isinstance(value, list):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(accepts(a, v) for a, v in zip(args, value))
        return not args or all(accepts(args[0], v) for v in value)
    if origin in (dict, collections.abc.Mapping) or tp is dict:
        return isinstance(value, dict)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp is list or tp is tuple:
        return isinstance(value, list)
    if isinstance(tp, type):
        # paths, image tensors, models, devices: a preset gives them as strings
        return isinstance(value, (str, tp))
    return True  # callables and other exotic annotations: the technique checks them itself


def type_name(tp) -> str:
    """``int``, ``float or str``, ``list of int``, ``path``... for error messages."""
    if tp is None or tp is typing.Any:
        return "any value"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        names = []
        for a in args:
            if a is not type(None) and (n := type_name(a)) not in names:
                names.append(n)
        return " or ".join(names)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection):
        return f"list of {type_name(args[0])}" if args else "list"
    if tp in (os.PathLike, Path) or (isinstance(tp, type) and issubclass(tp, os.PathLike)):
        return "path"
    if tp is torch.Tensor:
        return "image (path or skimage:NAME)"
    if tp is torch.device:
        return "device"
    if isinstance(tp, type) and (tp.__name__ == "Model" or issubclass(tp, torch.nn.Module)):
        return "model name"
    return getattr(tp, "__name__", str(tp))


def show_value(value) -> str:
    return f"{type(value).__name__} {value!r}"[:80]
