"""The root Typer app; each module of this package adds one group of commands to it.

Every usage error Click finds itself (an unknown option, a value that is not a number, a
missing argument) prints as one line, ``error: ...``, like the errors synthviz raises. An
unexpected exception (a bug) prints one line too, ``error: internal error: ...``, with its full
traceback kept in a file; ``--debug`` or ``SYNTHVIZ_DEBUG=1`` shows the traceback instead.

Only Typer's public names are used: typer 0.29 vendors its own Click, whose exceptions are not
the ``click`` package's; they are all :class:`typer.TyperException` (``exit_code``,
``format_message``, ``show``)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from ..env import env_flag
from ..errors import SynthvizError
from ..version import __version__

DEBUG_ENV = "SYNTHVIZ_DEBUG"
_debug = {"on": False}  # set by the root --debug option, read by the error handler


def debugging() -> bool:
    """``--debug`` was given or ``SYNTHVIZ_DEBUG`` holds a true value (1, true, yes, on; a value
    that is not yes/no counts as no here: :func:`root` reports it as an error)."""
    try:
        return _debug["on"] or env_flag(DEBUG_ENV, False)
    except SynthvizError:
        return False


def _usage_line(e: typer.TyperException) -> str:
    """One line for a Click usage error, naming the command's --help."""
    message = " ".join(e.format_message().split()).rstrip(".")
    ctx = getattr(e, "ctx", None)
    option = getattr(e, "option_name", None)  # Click's NoSuchOption and BadOptionUsage carry it
    if message.startswith("No such option") and option and option[1:].replace(".", "", 1).isdigit():
        message += " (a negative number is not a valid class, unit or size here)"
    where = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
    return f"error: {message}{where}"


def _is_no_args_help(e: typer.TyperException) -> bool:
    """``synthviz`` alone: Click raises its help text as a usage error (NoArgsIsHelpError)."""
    return any(cls.__name__ == "NoArgsIsHelpError" for cls in type(e).__mro__)


def save_traceback(error: BaseException) -> Path | None:
    """Write ``error``'s traceback (with the command line and version) to a new file under the
    temporary folder's ``synthviz-errors/``; None when even that cannot be written."""
    folder = Path(tempfile.gettempdir()) / "synthviz-errors"
    text = (f"synthviz {__version__}\ncommand: {' '.join(sys.argv)}\n\n"
            + "".join(traceback.format_exception(type(error), error, error.__traceback__)))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=time.strftime("traceback-%Y%m%d-%H%M%S-"), suffix=".txt", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        return None
    return Path(name)


def internal_error_line(error: BaseException) -> str:
    """``error: internal error: <Type>: <message>; full traceback in <file>`` (one line)."""
    message = " ".join(str(error).split())
    message = message if len(message) <= 300 else message[:297] + "..."
    path = save_traceback(error)
    where = f"full traceback in {path}" if path else "the traceback could not be saved"
    return f"error: internal error: {type(error).__name__}: {message}; {where} (run with --debug to see it)"


class OneLineGroup(TyperGroup):
    """Typer's group with Click's usage errors as one line (exit 2) instead of a boxed panel, and
    an unexpected exception as one line (exit 1) unless debugging."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # one the command did not handle itself (typer exits 130 silently)
            typer.echo("interrupted", err=True)
            raise

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        _debug["on"] = False
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except typer.Abort:
            typer.echo("aborted", err=True)
            rv = 1
        except typer.TyperException as e:  # every Click error of typer's vendored Click
            if _is_no_args_help(e):  # `synthviz` alone: the help, as before
                e.show()
                rv = 2
            else:
                typer.echo(_usage_line(e), err=True)
                rv = e.exit_code
        except Exception as e:  # a bug: one line and the traceback in a file, or all of it with --debug
            if debugging():
                raise
            typer.echo(internal_error_line(e), err=True)
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
def root(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help=f"On an internal error show the full traceback (also {DEBUG_ENV}=1).")] = False,
) -> None:
    """Pictures of what vision networks have learned, and painting with them."""
    _debug["on"] = debug
    try:
        env_flag(DEBUG_ENV, False)
    except SynthvizError as e:  # a typo in the switch: one line, as every user error
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
