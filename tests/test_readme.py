"""The README's commands and Python examples, run as a reader would run them.

Every ```` ```bash ```` and ```` ```python ```` block of README.md carries a marker on the line
before it, ``<!-- readme-test: MODE -->``:

- ``run``: the block runs, whole, in a fresh folder (``sims/`` linked into it, ``HOME`` there
  too) and must exit 0. ``linkstack`` and ``python3`` are the package under test
  (``sys.executable -m linkstack``); a command that would load the model replays the answers
  recorded from it (``LINKSTACK_BACKEND=recorded:...``, the ``--backend`` of every command).
  A Python block is executed from the repository root.
- ``parse``: the block needs what a test cannot have (minutes of real model or simulation, a
  broker, a cluster, the reader's own files): each ``linkstack`` command in it is parsed by
  the command line itself (command, options, their values and ranges; nothing runs), and each
  script it names (``bash .ci/install``, ``python3 bench/x.py``) must exist.

A block without a marker fails the test, so a new example cannot go untested.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from linkstack.cli.main import app
from linkstack.cli.options import BACKEND_ENV

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RECORDING = ROOT / "sims" / "scenarios" / "gemma-recorded.json"
MARKER = re.compile(r"^<!-- readme-test: (run|parse) -->$")
FIRST_COMMANDS = (
    "bash .ci/install && .venv/bin/python -m linkstack run",
    "bash .ci/install && .venv/bin/python -m pytest",
)


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    mode: str | None
    text: str

    @property
    def id(self) -> str:
        return f"{self.lang}-line{self.line}"


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with the marker before each (if any)."""
    lines = text.split("\n")
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = lines.index("```", i + 1)
        marker = MARKER.match(lines[i - 1]) if i else None
        blocks.append(
            Block(
                i + 1,
                fence.group(1),
                marker.group(1) if marker else None,
                "\n".join(lines[i + 1 : end]) + "\n",
            )
        )
        i = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
CODE = [b for b in BLOCKS if b.lang in ("bash", "python")]


def logical_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell block: lines joined at ``\\`` and inside quotes, split
    at ``&&``, ``;`` and ``|``, with redirections and leading ``VAR=value`` words dropped.
    ``<placeholder>`` words of the README (``<published digest>``) count as one word."""
    script = re.sub(r"<([a-z][a-z ]*)>", lambda m: m.group(1).replace(" ", "_").upper(), script)
    commands: list[list[str]] = []
    pending = ""
    for raw in script.split("\n"):
        pending += raw
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        try:
            lexer = shlex.shlex(pending, posix=True, punctuation_chars=";&|<>")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            words = list(lexer)
        except ValueError:  # a quote spans lines
            pending += "\n"
            continue
        pending = ""
        current: list[str] = []
        skip_next = False
        for word in [*words, ";"]:
            if skip_next:
                skip_next = False
            elif word in (">", "<", ">>", "2>"):
                skip_next = True
            elif word in (";", "&&", "|", "||"):
                while current and re.match(r"^[A-Z_][A-Z0-9_]*=", current[0]):
                    current.pop(0)
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
    return commands


def test_logical_commands() -> None:
    script = (
        "a --x 1 \\\n    --y 2   # comment\nX=1 b 'q\nr' > out.txt && c < in | d\n"
        "e --sha256 <published digest>\n"
    )
    assert logical_commands(script) == [
        ["a", "--x", "1", "--y", "2"],
        ["b", "q\nr"],
        ["c"],
        ["d"],
        ["e", "--sha256", "PUBLISHED_DIGEST"],
    ]


def linkstack_args(command: list[str]) -> list[str] | None:
    """The arguments of a ``linkstack`` command (also ``python3 -m linkstack``), else None."""
    if command[0] == "linkstack":
        return command[1:]
    if Path(command[0]).name.startswith("python") and command[1:3] == ["-m", "linkstack"]:
        return command[3:]
    return None


_ROOT_COMMAND = typer.main.get_command(app)


def parse_cli(args: list[str]) -> None:
    """Parse ``linkstack ARGS`` as the command line would, down to the sub-command, without
    running it. Raises the command line's usage error."""
    ctx = _ROOT_COMMAND.make_context("linkstack", list(args))
    command = _ROOT_COMMAND
    while isinstance(command, TyperGroup):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, rest = command.resolve_command(ctx, rest)
        assert name is not None and sub is not None, args
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub


def test_parse_cli_catches_what_a_reader_would_hit() -> None:
    parse_cli(["frame", "decode", "--layer", "tm", "--hex", "0aa1"])
    for bad in (
        ["frame", "decode", "--layr", "tm"],
        ["run", "--prompts", "0"],
        ["nosuch"],
        ["serve", "--listen", "127.0.0.1:1"],
    ):
        with pytest.raises(Exception, match=r"option|greater|command|Missing"):
            parse_cli(bad)


def test_the_first_commands_are_install_and_test() -> None:
    first = CODE[0]
    lines = [line.split("#")[0].strip() for line in first.text.strip().split("\n")]
    assert tuple(lines) == FIRST_COMMANDS
    assert (ROOT / ".ci" / "install").is_file()


def test_every_code_block_is_marked() -> None:
    unmarked = [b.line for b in CODE if b.mode is None]
    assert not unmarked, f"README.md: code blocks at lines {unmarked} have no readme-test marker"
    assert sum(b.mode == "run" for b in CODE) >= 6


PARSED = [
    (b, i, c) for b in CODE if b.lang == "bash" for i, c in enumerate(logical_commands(b.text))
]


@pytest.mark.parametrize(
    ("block", "index", "command"),
    PARSED,
    ids=[f"{b.id}-{i}-{' '.join(c[:3])}" for b, i, c in PARSED],
)
def test_every_command_parses(block: Block, index: int, command: list[str]) -> None:
    args = linkstack_args(command)
    if args is not None:
        try:
            parse_cli(args)
        except Exception as exc:  # the usage error is the message
            pytest.fail(f"README.md line {block.line}: `{shlex.join(command)}`: {exc}")
    elif command[0] == "bash" or (
        Path(command[0]).name.startswith("python") and command[1].endswith(".py")
    ):
        assert (ROOT / command[1]).is_file(), f"README.md line {block.line}: no {command[1]}"


def _recording(tmp_path: Path, blocks: list[Block]) -> Path:
    """The recorded answers, plus every prompt a README command types (``--prompt``)
    answered as the first recorded prompt is: the answer is not under test here."""
    doc = json.loads(RECORDING.read_text(encoding="utf-8"))
    first = next(iter(doc["recordings"].values()))
    for block in blocks:
        for command in logical_commands(block.text):
            for flag, value in itertools.pairwise(command):
                if flag == "--prompt":
                    doc["recordings"].setdefault(value, first)
    path = tmp_path / "recorded.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


RUN_SHELL = [b for b in CODE if b.lang == "bash" and b.mode == "run"]
RUN_PYTHON = [b for b in CODE if b.lang == "python" and b.mode == "run"]


@pytest.mark.parametrize("block", RUN_SHELL, ids=[b.id for b in RUN_SHELL])
def test_shell_block_runs(block: Block, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "sims").symlink_to(ROOT / "sims")
    prelude = (
        f'linkstack() {{ {shlex.quote(sys.executable)} -m linkstack "$@"; }}\n'
        f'python3() {{ {shlex.quote(sys.executable)} "$@"; }}\n'
        "set -euo pipefail\n"
    )
    env = {
        **os.environ,
        "HOME": str(work),
        "MPLBACKEND": "Agg",
        BACKEND_ENV: f"recorded:{_recording(tmp_path, [block])}",
    }
    env.pop("LINKSTACK_SDLS_KEY_FILE", None)
    res = subprocess.run(
        ["bash", "-c", prelude + block.text],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, (
        f"README.md line {block.line}: exit {res.returncode}\n"
        f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    )


@pytest.mark.parametrize("block", RUN_PYTHON, ids=[b.id for b in RUN_PYTHON])
def test_python_block_runs(
    block: Block, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(block.text, f"README.md:{block.line}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip(), "an example prints what it shows"


def test_the_packages_export_their_public_names() -> None:
    """``from linkstack.X import Name`` for the names the README and integrators use, and
    ``dir()`` lists them (it listed nothing for linkstack.codecs before)."""
    import importlib

    wanted = {
        "linkstack.spp": ["SpacePacket", "PacketStreamParser", "Segmenter", "CucFormat"],
        "linkstack.frames": ["TcFrame", "TmFrame", "AosFrame", "UslpFrame", "Clcw"],
        "linkstack.codecs": [
            "CodingChain",
            "ReedSolomon",
            "FrameSynchronizer",
            "encode_cltu",
            "compute_fecf",
            "TM_RANDOMIZER",
        ],
        "linkstack.mux": ["TmMultiplexer", "TcDemultiplexer", "UslpMultiplexer"],
        "linkstack.arq": ["Fop1", "Farm1", "SrSender", "SrReceiver"],
        "linkstack.hops": ["RfGround", "RfSpace", "IslEndpoint", "HopEndpoint"],
        "linkstack.payload": ["Prompt", "Result", "ModelEndpoint", "RecordedBackend"],
    }
    for name, names in wanted.items():
        module = importlib.import_module(name)
        exported = set(module.__all__)
        assert set(names) <= exported and set(names) <= set(dir(module)), name
        for public in exported:
            getattr(module, public)  # every name in __all__ exists
