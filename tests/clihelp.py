"""Helpers for CLI tests: run a command in-process, check a one-line error."""

from __future__ import annotations

from typer.testing import CliRunner

from synthviz.cli import app

runner = CliRunner()


def run(*args):
    """Invoke ``synthviz ARGS...`` in-process (paths and numbers are turned into strings)."""
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result, *fragments) -> str:
    """Assert exit code 2 and exactly one output line, ``error: ...``, containing every fragment."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]
