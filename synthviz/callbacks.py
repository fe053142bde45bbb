"""Callbacks the engine calls after every step: ``cb(StepInfo) -> bool`` (True stops early)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .progress import progress


@dataclass
class StepInfo:
    step: int
    values: torch.Tensor  # (B,) objective per batch element, before this step's update
    param: object
    steps: int


Callback = Callable[[StepInfo], "bool | None"]


class ProgressBar:
    """The engine's progress bar (:mod:`synthviz.progress`) showing the objective; a context
    manager the engine enters, called after every step."""

    def __init__(self, steps: int, label: str = "render"):
        self.progress = progress(steps, label[:40], status="")

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.end_at_count()
        self.progress.__exit__(*exc)

    def __call__(self, info: StepInfo) -> None:
        self.progress.advance(status=f"objective {info.values.mean().item():.4g}")


class StopWhen:
    """Stop as soon as ``predicate(info)`` is true (e.g. the model is fooled)."""

    def __init__(self, predicate: Callable[[StepInfo], bool]):
        self.predicate = predicate

    def __call__(self, info: StepInfo) -> bool:
        return bool(self.predicate(info))
