"""Options that several commands share, declared once, and the one way a command fails.

Exit codes: 0 success, 1 the work ran and failed (a prompt lost, a check that found
differences), 2 bad input (an option, a scenario key, octets that do not decode).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from linkstack.errors import ConfigError, DecodeError, EncodeError, LinkstackError

__all__ = [
    "BackendOpt",
    "ModelOpt",
    "ScenarioArg",
    "ScenarioOpt",
    "ScenarioSeedOpt",
    "SetOpt",
    "fail",
]

DEFAULT_SCENARIO = "default"

ScenarioArg = Annotated[str, typer.Argument(
    help="Scenario name (sims/scenarios) or TOML file.")]
ScenarioOpt = Annotated[str, typer.Option(
    "--scenario", help="Scenario name (sims/scenarios) or TOML file.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a scenario key: KEY=VALUE (repeatable).")]
ScenarioSeedOpt = Annotated[int | None, typer.Option(
    "--seed", min=0, help="The scenario's random seed (channel draws); default: its [run] seed.")]
ModelOpt = Annotated[Path | None, typer.Option(
    "--model", help="A GGUF file (default: Gemma 3 270M Q4_K_M from PyPI).")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="llama (default) or recorded:FILE (replay, for tests).")]


def fail(exc: LinkstackError | ValueError) -> typer.Exit:
    """Print one line naming the field, key or option, and return the exit to raise (2)."""
    if isinstance(exc, DecodeError):
        msg = (f"error: {exc.layer} decode failed: field {exc.field} at offset {exc.offset}: "
               f"{exc.reason} ({type(exc).__name__})")
    elif isinstance(exc, EncodeError):
        msg = f"error: {exc.layer} encode failed: field {exc.field}: {exc.reason}"
    elif isinstance(exc, ConfigError):
        msg = f"error: {exc.key}: {exc.reason}"
    else:
        msg = f"error: {exc}"
    typer.echo(msg, err=True)
    return typer.Exit(2)
