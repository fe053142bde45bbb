"""A tiny name -> factory registry (as in timm's ``register_model``), shared by models,
objectives, saliency methods and techniques: adding one is one decorated function."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import SynthvizError, did_you_mean

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    def __init__(self, kind: str, hint: str = ""):
        self.kind = kind
        self.hint = hint  # how to list the valid names, for error messages
        self._items: dict[str, F] = {}

    def register(self, name: str | None = None, *, replace: bool = False) -> Callable[[F], F]:
        """``@registry.register("name")``; a second entry with the same name is refused unless
        ``replace=True`` (two plugins silently shadowing each other is a bug, not a feature)."""
        def deco(fn: F) -> F:
            key = name or fn.__name__
            if key in self._items and not replace and self._items[key] is not fn:
                raise SynthvizError(f"{self.kind} '{key}' is already registered; pass replace=True to replace it")
            self._items[key] = fn
            return fn

        return deco

    def get(self, name: str) -> F:
        try:
            return self._items[name]
        except KeyError:
            hint = f"; {self.hint}" if self.hint else ""
            raise SynthvizError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self._items)}{hint}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def names(self) -> list[str]:
        return list(self._items)
