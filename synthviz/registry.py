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

    def register(self, name: str | None = None) -> Callable[[F], F]:
        def deco(fn: F) -> F:
            self._items[name or fn.__name__] = fn
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
