"""The root Typer app; each module of this package adds one group of commands to it."""

import typer

app = typer.Typer(
    name="synthviz",
    help="Pictures of what vision networks have learned, and painting with them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
