"""The one progress API (synthviz.progress): it counts what it is told whether or not it is drawn,
a drawn bar shows that count (rich's task), a non-terminal stderr gets one final line from a bar
and nothing from a transient one, and the rate is items per second since the bar started."""

from __future__ import annotations

import time

import pytest

from synthviz.progress import progress


def test_advances_are_counted_from_the_resume_point_even_when_not_drawn():
    with progress(20, "job", completed=5, enabled=False) as bar:
        for n in (1, 2, 3):
            bar.advance(n)
    assert not bar.shown and bar.tasks == []
    assert (bar.completed, bar.total, bar.finished) == (11, 20, False)
    bar.end_at_count()
    assert (bar.completed, bar.total, bar.finished) == (11, 11, True)


def test_a_drawn_bar_shows_the_count_and_prints_its_final_line_once_off_a_terminal(capsys):
    with progress(10, "[bold]index[/bold]", completed=2, status="", unit="img") as bar:
        for i in range(4):
            bar.advance(2, status=f"loss {i}")
        bar.print("item <1>: [red]done[/red]")
    task = bar.tasks[0]
    assert (task.completed, task.total, task.finished) == (10, 10, True) == (bar.completed, bar.total, bar.finished)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "item <1>: [red]done[/red]"  # printed as given: no markup read
    assert len(lines) == 2 and "[bold]index[/bold]" in lines[1]  # the description too
    assert "10/10" in lines[1] and "loss 3" in lines[1] and " img/s" in lines[1]


def test_a_transient_bar_is_not_drawn_off_a_terminal_but_still_counts(capsys):
    with progress(50, "saliency", transient=True) as bar:
        bar.advance(7)
        bar.print("a line")
    assert not bar.shown and bar.completed == 7
    assert capsys.readouterr().err == "a line\n"


def test_the_rate_is_items_per_second_since_the_bar_started(monkeypatch):
    clock = iter([100.0, 104.0, 106.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    bar = progress(100, "x", unit="img", enabled=False)
    with bar:  # starts at t=100
        assert bar.rate == "-"
        bar.advance(10)
        assert bar.rate == "2.5"  # 10 items in 4 s
        bar.advance(5)
        assert bar.rate == "2.5"  # 15 items in 6 s


def test_a_bad_clock_is_refused():
    with pytest.raises(ValueError, match="clock"):
        progress(3, "x", clock="wall")


def test_the_attribution_bar_is_quiet_off_a_terminal_and_yields_a_counter(capsys):
    from synthviz.attribution.core import progress as batches

    with batches(40, "Score-CAM") as advance:
        for _ in range(40):
            advance()
    assert capsys.readouterr().err == ""


def test_the_engine_bar_ends_at_the_real_count(capsys):
    import torch

    from synthviz.callbacks import ProgressBar, StepInfo

    with ProgressBar(500, "channel[3]") as bar:
        for step in range(8):
            bar(StepInfo(step, torch.full((2,), 0.25), None, 500))
    assert (bar.progress.completed, bar.progress.total) == (8, 8)
    line = capsys.readouterr().err.strip()
    assert line.startswith("channel[3]") and "8/8" in line and "objective 0.25" in line
