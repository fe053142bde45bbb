"""The root Typer app; each module of this package adds one group of commands to it.

Every usage error Click finds itself (an unknown option, a value that is not a number, a
missing argument) prints as one line, ``error: ...``, like the errors synthviz raises."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

from typer import _click as click  # typer vendors its own Click
import typer
from typer.core import TyperGroup

from ..version import __version__


def _usage_line(e: "click.exceptions.ClickException") -> str:
    """One line for a Click usage error, naming the command's --help."""
    message = " ".join(e.format_message().split()).rstrip(".")
    ctx = getattr(e, "ctx", None)
    if isinstance(e, click.exceptions.NoSuchOption) and e.option_name[1:].replace(".", "", 1).isdigit():
        message += " (a negative number is not a valid class, unit or size here)"
    where = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
    return f"error: {message}{where}"


class OneLineGroup(TyperGroup):
    """Typer's group with Click's usage errors as one line (exit 2) instead of a boxed panel."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # `synthviz` alone: the help, as before
            e.show()
            rv = 2
        except click.exceptions.ClickException as e:
            click.echo(_usage_line(e), err=True)
            rv = e.exit_code
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            rv = 1
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="synthviz",
    cls=OneLineGroup,
    help="Pictures of what vision networks have learned, and painting with them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"synthviz {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None) -> None:
    """Pictures of what vision networks have learned, and painting with them."""
