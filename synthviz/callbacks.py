"""Callbacks the engine calls after every step: ``cb(StepInfo) -> bool`` (True stops early)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class StepInfo:
    step: int
    values: torch.Tensor  # (B,) objective per batch element, before this step's update
    param: object
    steps: int


Callback = Callable[[StepInfo], "bool | None"]


class ProgressBar:
    """A rich progress bar showing the objective; a context manager the engine enters."""

    def __init__(self, steps: int, label: str = "render"):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        # on stderr, so a command's printed results can be piped
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[value]}"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task(label[:40], total=steps, value="")

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        # a run that stopped early (fooled, NaN, Ctrl-C) ends the bar at the real count, not "8/500"
        done = self.progress.tasks[0].completed
        self.progress.update(self.task, total=done, completed=done)
        self.progress.stop()

    def __call__(self, info: StepInfo) -> None:
        self.progress.update(self.task, advance=1, value=f"objective {info.values.mean().item():.4g}")


class StopWhen:
    """Stop as soon as ``predicate(info)`` is true (e.g. the model is fooled)."""

    def __init__(self, predicate: Callable[[StepInfo], bool]):
        self.predicate = predicate

    def __call__(self, info: StepInfo) -> bool:
        return bool(self.predicate(info))
