"""Helpers for CLI tests: run a command in-process or in a fresh Python process, check a one-line error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthviz.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
       "OMP_NUM_THREADS": "1", "COLUMNS": "100"}


def run(*args):
    """Invoke ``synthviz ARGS...`` in-process (paths and numbers are turned into strings). A bug's
    exception propagates to the test as it is (SYNTHVIZ_DEBUG), instead of the one-line internal error."""
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env={"SYNTHVIZ_DEBUG": "1"})


def help_output(*args, width: int = 300, on=app) -> str:
    """``synthviz ARGS --help`` as a terminal ``width`` columns wide shows it. Typer reads TERMINAL_WIDTH
    once, when its help renderer is first imported: the width is set there too, or the first test's
    width would hold for every later test in the process (words wider than a column get split)."""
    import typer.rich_utils

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.rich_utils, "MAX_WIDTH", width)
        result = CliRunner().invoke(on, [*map(str, args), "--help"],
                                    env={"COLUMNS": str(width), "TERMINAL_WIDTH": str(width)})
    assert result.exit_code == 0, result.output
    return result.output


def one_line_error(result, *fragments) -> str:
    """Assert exit code 2 and exactly one output line, ``error: ...``, containing every fragment."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def sigint_default() -> None:
    """In the child before it starts: SIGINT back to the default, so Python installs its own
    handler even when this test run was started with SIGINT ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli_command(patch: str, args) -> list[str]:
    code = "import os, signal, sys, time\nimport torch\ntorch.set_num_threads(1)\n" + textwrap.dedent(patch) + \
        "\nfrom synthviz.cli import main\nsys.argv = ['synthviz', *sys.argv[1:]]\nmain()\n"
    return [sys.executable, "-c", code, *map(str, args)]


def cli_with(patch: str, *args, cwd: Path, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``synthviz ARGS`` through the real ``main()`` in a fresh Python process after ``patch``
    (Python source run first: it may replace a library function or arrange a real SIGINT)."""
    return subprocess.run(_cli_command(patch, args), cwd=cwd, env={**ENV, **(env or {})},
                          capture_output=True, preexec_fn=sigint_default, text=True, timeout=timeout)


def cli_start(patch: str, *args, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """As :func:`cli_with`, but started and left running (output piped): for a second run at the same
    time, or a SIGKILL. The caller waits for it or kills it."""
    return subprocess.Popen(_cli_command(patch, args), cwd=cwd, env={**ENV, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=sigint_default, text=True)
