"""A bug in a command (an unexpected exception) through the real ``main()`` in a child process: one
line naming the exception and a file holding its traceback (exit 1); ``--debug`` or SYNTHVIZ_DEBUG=1
shows the traceback instead. Usage errors stay one line (exit 2)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clihelp import cli_with

# `synthviz models` calls synthviz.models.list_models: replaced before the CLI imports it
BROKEN_ZOO = """
    import synthviz.models
    def list_models():
        raise RuntimeError("the zoo burned down")
    synthviz.models.list_models = list_models
"""


def lines_of(proc) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


def test_an_unexpected_exception_is_one_line_and_its_traceback_is_in_a_file(tmp_path):
    proc = cli_with(BROKEN_ZOO, "models", cwd=tmp_path, env={"TMPDIR": str(tmp_path), "SYNTHVIZ_DEBUG": ""})
    lines = lines_of(proc)
    assert proc.returncode == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: internal error: RuntimeError: the zoo burned down; full traceback in "), lines
    path = Path(re.search(r"full traceback in (\S+)", lines[0]).group(1))
    assert path.is_file() and tmp_path in path.parents  # under the temporary folder (TMPDIR)
    text = path.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: the zoo burned down" in text
    assert "in list_models" in text and "models_cmd" in text  # the frames of the command and of the bug


@pytest.mark.parametrize("how", ["--debug", "SYNTHVIZ_DEBUG=1"])
def test_debug_shows_the_traceback_instead(tmp_path, how):
    args = ["--debug", "models"] if how == "--debug" else ["models"]
    env = {"TMPDIR": str(tmp_path), "SYNTHVIZ_DEBUG": "1" if how != "--debug" else ""}
    proc = cli_with(BROKEN_ZOO, *args, cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr and "in list_models" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == "RuntimeError: the zoo burned down"
    assert "internal error" not in proc.stderr and not (tmp_path / "synthviz-errors").exists()


def test_usage_and_user_errors_stay_one_line_exit_2(tmp_path):
    for args, fragment in [(["classviz", "--no-such-option"], "No such option"),
                           (["layers", "no_such_model"], "unknown model 'no_such_model'")]:
        proc = cli_with("", *args, cwd=tmp_path, env={"SYNTHVIZ_DEBUG": ""})
        lines = lines_of(proc)
        assert proc.returncode == 2 and len(lines) == 1, lines
        assert lines[0].startswith("error: ") and fragment in lines[0] and "internal error" not in lines[0], lines
