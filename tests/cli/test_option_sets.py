"""Option sets declared once (cli.common.OptionSet): the saliency methods' options appear in both
``saliency`` and ``sanity`` and reach the command as one dict, in the place the command names."""

from __future__ import annotations

import inspect
from typing import Annotated, Optional

import typer
from typer.main import get_command
from typer.testing import CliRunner

from clihelp import help_output
from synthviz.cli import app
from synthviz.cli.common import OptionSet
from synthviz.cli.saliency import METHOD_OPTIONS


def test_an_option_set_takes_the_place_of_its_parameter_and_passes_one_dict():
    pair = OptionSet("extra", alpha=(Annotated[int, typer.Option(help="Alpha.")], 3),
                     beta=(Annotated[Optional[str], typer.Option(help="Beta.")], None))
    toy = typer.Typer()
    seen = {}

    @toy.command()
    @pair
    def cmd(name: str, extra: dict = pair.default, last: Annotated[int, typer.Option()] = 0) -> None:
        seen.update(name=name, extra=extra, last=last)

    assert list(inspect.signature(cmd).parameters) == ["name", "alpha", "beta", "last"]
    assert CliRunner().invoke(toy, ["x", "--beta", "b", "--last", "7"]).exit_code == 0
    assert seen == {"name": "x", "extra": {"alpha": 3, "beta": "b"}, "last": 7}
    help_text = help_output(width=200, on=toy)
    assert "--alpha" in help_text and "Alpha." in help_text and "--beta" in help_text


def test_saliency_and_sanity_share_every_method_option():
    commands = get_command(app).commands
    for name in ("saliency", "sanity"):
        params = {p.name for p in commands[name].params}
        assert set(METHOD_OPTIONS.options) <= params, (name, set(METHOD_OPTIONS.options) - params)
        assert "options" not in params
