"""Every command's model help is generated from one description of the model sources
(synthviz.model_zoo.MODEL_SOURCES): its --help names every registered model and source."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command

from clihelp import help_output
from synthviz.cli import app
from synthviz.model_zoo import MODEL_SOURCES, model_help
from synthviz.models import MODELS, SOURCES


def commands_with_a_model(group, path=()) -> list[tuple[str, ...]]:
    """The command paths (``("evaluate",)``, ...) that take a model as --model or as MODEL."""
    found = []
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            found += commands_with_a_model(cmd, (*path, name))
        elif any(p.name == "model" for p in cmd.params):
            found.append((*path, name))
    return found


COMMANDS = commands_with_a_model(get_command(app))


def help_text(path: tuple[str, ...]) -> str:
    """``synthviz PATH --help`` as plain words: the panels' borders dropped, lines joined."""
    text = re.sub(r"[│╭╮╰╯─]", " ", help_output(*path, width=300))
    return " ".join(text.split())


def test_the_commands_that_take_a_model_are_found():
    assert {("evaluate",), ("saliency",), ("classviz",), ("layers",), ("stylize",), ("index",)} <= set(COMMANDS)


def test_every_registered_model_and_source_is_described():
    assert set(MODELS.names()) | set(SOURCES.names()) <= set(MODEL_SOURCES)
    assert {"efficientnet_lite0", "torchvision", "timm"} <= set(MODEL_SOURCES)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_model_help_names_every_registered_source(path):
    text = help_text(path)
    assert " ".join(model_help().split()) in text  # the one generated description, not a hand-written one
    for name in MODELS.names():
        assert name in text, (path, name)
    for prefix in SOURCES.names():
        assert f"{prefix}:NAME" in text, (path, prefix)
    assert "pip install 'synthviz[timm]'" in text  # rich markup would eat an unescaped [timm]
