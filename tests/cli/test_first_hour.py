"""What a new user meets first (issue 11): --version, help text wrapped to the terminal (no hard
line breaks from docstrings), and a progress bar that ends at the real count."""

from __future__ import annotations


import pytest
import torch
from typer.main import get_command
from typer.testing import CliRunner

import synthviz
from synthviz.callbacks import ProgressBar, StepInfo
from clihelp import help_output
from synthviz.cli import app

COMMANDS = sorted(get_command(app).commands)


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"synthviz {synthviz.__version__}\n"


@pytest.mark.parametrize("width", [80, 140])
@pytest.mark.parametrize("name", COMMANDS)
def test_help_text_is_wrapped_to_the_terminal(name, width):
    """Every line of the description but a paragraph's last is about as long as the longest (the
    text is rewrapped, not broken where the docstring's lines end)."""
    output = help_output(name, width=width)
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("╭")), len(lines))
    paragraphs, current = [], []
    for line in lines[start:end] + [""]:
        if line.strip():
            current.append(line.rstrip())
        elif current:
            paragraphs.append(current)
            current = []
    assert paragraphs, output
    for para in paragraphs:
        full = max(len(line) for line in para)
        assert full <= width
        for line in para[:-1]:
            assert len(line) > full - 20, f"ragged line in `{name} --help`:\n" + "\n".join(para)


def test_progress_bar_ends_at_the_real_count_when_a_run_stops_early():
    bar = ProgressBar(500, "render")
    with bar:
        for step in range(8):
            bar(StepInfo(step, torch.zeros(1), None, 500))
    task = bar.progress.tasks[0]
    assert (task.completed, task.total) == (8, 8) and task.finished
