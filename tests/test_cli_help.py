"""``--help`` of every command: every option and argument explained, flags shown as flags.

Walks the click command tree that typer builds from :data:`linkstack.cli.main.app`, so a
command or option added later is checked too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.testing import CliRunner

from linkstack.cli.main import app


def _commands() -> Iterator[tuple[tuple[str, ...], object]]:
    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], object]]:
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, command

    yield from walk(typer.main.get_command(app), ())


COMMANDS = sorted(_commands(), key=lambda item: item[0])


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {
        "run",
        "sweep",
        "tune",
        "serve",
        "channel",
        "frame decode",
        "cadu encode",
        "cltu decode",
        "sdls verify",
        "endpoint ask",
        "specs build",
    } <= names
    assert len(names) >= 20


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_and_argument_has_help(path: tuple[str, ...], command: object) -> None:
    missing = [
        "/".join(param.opts)
        for param in command.params  # type: ignore[attr-defined]
        if isinstance(param, TyperOption | TyperArgument) and not (param.help or "").strip()
    ]
    assert not missing, f"linkstack {' '.join(path)}: no help text for {missing}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_shows_flags_without_a_value(path: tuple[str, ...], command: object) -> None:
    res = CliRunner().invoke(app, [*path, "--help"], terminal_width=80)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    flags = [
        p
        for p in command.params  # type: ignore[attr-defined]
        if isinstance(p, TyperOption) and p.is_flag
    ]
    for flag in [*flags, None]:
        opt = "--help" if flag is None else max(flag.opts, key=len)
        (line,) = [
            x
            for x in lines
            if x.strip().startswith(opt + " ")
            or x.strip() == opt
            or x.strip().startswith(opt + ",")
        ] or [""]
        assert line, f"linkstack {' '.join(path)} --help does not list {opt}"
        assert "<bool>" not in line and "BOOLEAN" not in line, line
    # every help text shows whole, not squeezed into a narrow column
    assert all(len(x) <= 80 for x in lines), [x for x in lines if len(x) > 80]


def test_help_keeps_bracketed_words() -> None:
    """A help text naming a TOML table (``[run]``) shows it (Rich markup dropped it)."""
    res = CliRunner().invoke(app, ["run", "--help"], terminal_width=80)
    assert "[constellation] table" in " ".join(res.output.split())
    assert "its [run] seed" in " ".join(res.output.split())


def test_endpoint_ask_explains_the_model_options() -> None:
    res = CliRunner().invoke(app, ["endpoint", "ask", "--help"], terminal_width=80)
    text = " ".join(res.output.split())
    for option, words in (
        ("--max-tokens", "Most tokens"),
        ("--temperature", "greedy"),
        ("--seed", "sampling seed"),
        ("--threads", "CPU threads"),
    ):
        assert f"{option} " in text and words in text, option
