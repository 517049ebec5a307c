"""Options that several commands share, declared once, and the one way a command fails.

Exit codes: 0 success, 1 the work ran and failed (a prompt lost, a check that found
differences), 2 bad input (an option, a scenario key, octets that do not decode).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from linkstack.errors import ConfigError, DecodeError, EncodeError, LinkstackError

__all__ = [
    "BACKEND_ENV",
    "LAYOUT_OPTIONS",
    "BackendOpt",
    "FecfOpt",
    "FecfSizeOpt",
    "FhecOpt",
    "InsertZoneOpt",
    "ModelOpt",
    "OcfOpt",
    "ScenarioArg",
    "ScenarioOpt",
    "ScenarioSeedOpt",
    "SegmentOpt",
    "SetOpt",
    "check_output",
    "fail",
    "group",
    "read_text",
]

DEFAULT_SCENARIO = "default"

HELP_MARKUP = None
"""``--help`` is click's plain layout: Rich's boxed one squeezes the help texts into a narrow
column at 80 columns, shows ``<bool>`` after flags as if they took a value, and reads
``[run]`` in a help text as a markup tag (and drops it)."""


def group(help: str) -> typer.Typer:
    """A command group (``linkstack frame ...``) with the project's help layout."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=HELP_MARKUP)


ScenarioArg = Annotated[str, typer.Argument(
    help="Scenario name (sims/scenarios) or TOML file.")]
ScenarioOpt = Annotated[str, typer.Option(
    "--scenario", help="Scenario name (sims/scenarios) or TOML file.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE", help="Override a scenario key: KEY=VALUE (repeatable).")]
ScenarioSeedOpt = Annotated[int | None, typer.Option(
    "--seed", min=0, help="The scenario's random seed (channel draws); default: its [run] seed.")]
ModelOpt = Annotated[Path | None, typer.Option(
    "--model", help="A GGUF file (default: Gemma 3 270M Q4_K_M from PyPI).")]
BACKEND_ENV = "LINKSTACK_BACKEND"
"""Environment variable giving ``--backend`` when the command line does not (e.g.
``recorded:FILE`` to run the README's commands without the model)."""
BackendOpt = Annotated[str, typer.Option(
    "--backend", envvar=BACKEND_ENV, help="llama (default) or recorded:FILE (replay, for tests).")]
SlotsOpt = Annotated[int, typer.Option(
    "--slots", min=1, max=64, help="Onboard inference slots: prompts generated at once "
    "(one llama.cpp context each).")]
StreamTokensOpt = Annotated[int, typer.Option(
    "--stream-tokens", min=0, max=65535, help="Stream partial results: a segment every N "
    "generated tokens (0: not by count).")]
StreamMsOpt = Annotated[float, typer.Option(
    "--stream-ms", min=0.0, max=3.6e6, help="Stream partial results: a segment every T "
    "milliseconds (0: not by time).")]


# How the frames of one channel are laid out (frame decode/encode, sdls protect/verify).
FecfOpt = Annotated[bool, typer.Option("--fecf/--no-fecf",
                                       help="Frame Error Control Field present (TC/TM/AOS/USLP).")]
FecfSizeOpt = Annotated[int, typer.Option("--fecf-size", help="USLP FECF: 2 (CRC-16) or 4 "
                                          "(CRC-32).")]
OcfOpt = Annotated[bool, typer.Option("--ocf", help="AOS: this VC carries an OCF (AOS has no "
                                      "OCF flag).")]
InsertZoneOpt = Annotated[int, typer.Option("--insert-zone", help="AOS/USLP Insert Zone "
                                            "length in octets.")]
FhecOpt = Annotated[bool, typer.Option("--fhec", help="AOS: Frame Header Error Control "
                                       "present.")]
SegmentOpt = Annotated[bool, typer.Option("--segment-header", help="TC: the VC uses the "
                                          "Segment Header (MAP service).")]


LAYOUT_OPTIONS: dict[str, str] = {
    "frame_length": "--frame-length", "insert_zone_length": "--insert-zone",
    "fecf_size": "--fecf-size", "truncated_frame_length": "--truncated-length",
    "interleave": "--interleave", "code": "--code",
}
"""Configuration keys of frames and codes -> the option that sets them (for :func:`fail`)."""


def fail(exc: LinkstackError | ValueError, options: Mapping[str, str] | None = None
         ) -> typer.Exit:
    """Print one line naming the field, key or option, and return the exit to raise (2).

    ``options`` renames a :class:`ConfigError`'s key to the option that set it."""
    if isinstance(exc, ConfigError) and options and exc.key in options:
        exc = ConfigError(exc.reason, key=options[exc.key])
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


def check_output(path: Path | None, option: str) -> None:
    """Refuse, before any work, an output file that cannot be written: its directory does not
    exist, or the path is a directory (:class:`ConfigError` naming ``option``)."""
    if path is None or str(path) == "-":
        return
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a directory, not a file", key=option)
    if not path.parent.is_dir():
        raise ConfigError(f"directory {str(path.parent)!r} does not exist", key=option)


def read_text(path: Path, option: str) -> str:
    """The UTF-8 text of an input file; a missing, unreadable or non-UTF-8 file is a
    :class:`ConfigError` naming ``option``."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc.strerror}", key=option) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{str(path)!r} is not UTF-8 text (octet {exc.start})",
                          key=option) from None
