"""The one progress display every long job uses: a rich bar on stderr (so a command's printed
results can still be piped), counting done items of a known total.

    with progress(len(images), "index", unit="img") as bar:
        for batch in batches:
            ...
            bar.advance(len(batch))

The bar counts whether or not it is shown (``bar.completed``), so a job can hand it out freely.
What is shown follows rich: on a terminal the bar redraws in place; when stderr is a file or a
pipe a bar prints its final state once when it stops (a log keeps one line per job), and a
``transient`` bar prints nothing at all (it is not even built).
"""

from __future__ import annotations

import sys
import time

CLOCKS = ("remaining", "elapsed")


def stderr_is_terminal() -> bool:
    """Whether rich would redraw a bar on stderr in place (a terminal that is not ``TERM=dumb``)."""
    from rich.console import Console

    console = Console(stderr=True)
    return console.is_terminal and not console.is_dumb_terminal


class Progress:
    """A count of done items out of ``total``, drawn as a bar: ``description | bar | done/total |
    [status] | [rate unit/s] | time``. Use it as a context manager (the bar is drawn between
    enter and exit); see :func:`progress` for the arguments."""

    def __init__(self, total: int, description: str, *, completed: int = 0, status: str | None = None,
                 unit: str | None = None, clock: str = "remaining", transient: bool = False,
                 enabled: bool = True):
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, not {clock!r}")
        self.total, self.completed, self.description = int(total), int(completed), description
        self.status, self.unit = status, unit
        self._started_at: float | None = None
        self._advanced = 0  # items done since enter: the rate
        self._bar = self._task = None
        if enabled and not (transient and not stderr_is_terminal()):
            self._bar, self._task = _rich_bar(self, clock, transient)

    @property
    def shown(self) -> bool:
        """Whether the bar is drawn (False: disabled, or transient on a non-terminal)."""
        return self._bar is not None

    @property
    def finished(self) -> bool:
        return self.completed >= self.total

    @property
    def tasks(self) -> list:
        """rich's tasks of the drawn bar (one; none when not shown): what the display shows."""
        return list(self._bar.tasks) if self._bar is not None else []

    @property
    def rate(self) -> str:
        """Items per second since the bar started, like ``12.3`` (``-`` before the first advance)."""
        if not self._advanced or self._started_at is None:
            return "-"
        return f"{self._advanced / max(time.monotonic() - self._started_at, 1e-9):.1f}"

    def __enter__(self) -> Progress:
        self._started_at, self._advanced = time.monotonic(), 0
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> bool:
        if self._bar is not None:
            self._bar.stop()
        return False

    def advance(self, n: int = 1, *, status: str | None = None) -> None:
        """``n`` more items done (and the status text, when given)."""
        self.completed += n
        self._advanced += n
        self.update(status=status)

    def update(self, *, completed: int | None = None, total: int | None = None, status: str | None = None) -> None:
        """Set the count, the total or the status text (what is not given stays)."""
        if completed is not None:
            self.completed = int(completed)
        if total is not None:
            self.total = int(total)
        if status is not None:
            self.status = status
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, total=self.total, status=self.status or "",
                             rate=self.rate)

    def end_at_count(self) -> None:
        """A job that stopped early (fooled, NaN, Ctrl-C) ends its bar at the real count, not ``8/500``."""
        self.update(total=self.completed)

    def print(self, line: str) -> None:
        """One plain line on stderr, above the bar when it is drawn (no rich markup is read)."""
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)


def _rich_bar(p: Progress, clock: str, transient: bool):
    """The rich display of ``p`` and its task id."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn()]
    if p.status is not None:
        columns.append(TextColumn("{task.fields[status]}", markup=False))
    if p.unit is not None:
        unit = p.unit.replace("{", "{{").replace("}", "}}")
        columns.append(TextColumn("{task.fields[rate]} " + unit + "/s", markup=False))
    columns.append(TimeRemainingColumn() if clock == "remaining" else TimeElapsedColumn())
    bar = RichProgress(*columns, console=Console(stderr=True), transient=transient)
    task = bar.add_task(p.description, total=p.total, completed=p.completed, status=p.status or "", rate="-")
    return bar, task


def progress(total: int, description: str, *, completed: int = 0, status: str | None = None,
             unit: str | None = None, clock: str = "remaining", transient: bool = False,
             enabled: bool = True) -> Progress:
    """A progress bar for ``total`` items, used as ``with progress(...) as bar: bar.advance(n)``.

    Args:
        total: the items the job has in all; ``completed`` of them are already done (a resume).
        description: the text left of the bar.
        status: when given, a text column after the count (``bar.advance(status=...)`` changes it),
            e.g. the current objective or loss terms.
        unit: when given, the rate since the bar started, as ``12.3 <unit>/s``.
        clock: ``remaining`` (the estimated time left) or ``elapsed``.
        transient: the bar disappears when done, and is not drawn at all unless stderr is a terminal.
        enabled: False counts without drawing anything.
    """
    return Progress(total, description, completed=completed, status=status, unit=unit, clock=clock,
                    transient=transient, enabled=enabled)
