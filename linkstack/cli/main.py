"""The ``linkstack`` command: one typer application, one sub-command module per layer.

Each ``linkstack/cli/<name>.py`` module defines a ``register(app)`` function that adds
its commands; this file only lists them.
"""

from __future__ import annotations

import importlib

import typer

from linkstack.cli.options import HELP_MARKUP

app = typer.Typer(
    name="linkstack",
    help="A CCSDS-style space link protocol stack for AI payload traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP,
)

# Sub-command modules, in the order they appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "run", "constellation", "sweep", "files", "serve", "gateway", "frame", "sdls", "coding",
    "arq", "endpoint", "specs",
)

def _version(value: bool) -> None:
    if value:
        from linkstack import __version__

        typer.echo(f"linkstack {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """A CCSDS-style space link protocol stack for AI payload traffic."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"linkstack.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
