"""``linkstack specs build [--out DIR] [--check]``: generate or check the framing specs.

Writes the Markdown pages of ``specs/`` (see :mod:`linkstack.specgen.build`) from the code. With
``--check`` nothing is written: the command compares the directory with a fresh build, lists
the files that differ on stderr and exits 1 if any does (0 when up to date). A build that
cannot be made — a field doc out of date with its declaration, a worked example that does not
decode back, a compliance entry naming a test that does not exist — exits 2 with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from linkstack.cli.options import group as command_group
from linkstack.specgen import build as specs

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``specs`` command group (``specs build``) to ``app``."""
    group = command_group("The framing specs in specs/, generated from the code.")

    @group.command("build")
    def build(
        out: Annotated[Path | None, typer.Option(
            "--out", "-o", help="Directory to write (default: specs/ of the repository).",
            file_okay=False)] = None,
        check: Annotated[bool, typer.Option(
            "--check", help="Write nothing; exit 1 listing the files that differ.")] = False,
        root: Annotated[Path | None, typer.Option(
            "--root", help="Repository root whose tests/ the compliance table is checked "
                           "against (default: the one this package lives in).",
            file_okay=False)] = None,
    ) -> None:
        """Generate the specs (or check them with --check)."""
        base = specs.default_root() if root is None else root
        target = out if out is not None else base / "specs"
        if root is not None and not (root / "tests").is_dir():  # name the option that is wrong
            typer.echo(f"error: --root: no tests/ directory under {root} (the compliance "
                       "table's test names are checked against it)", err=True)
            raise typer.Exit(2)
        try:
            if check:
                problems = specs.check(target, base)
            else:
                changed = specs.write(target, base)
        except specs.SpecBuildError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if check:
            if problems:
                for line in problems:
                    typer.echo(f"{target / line}", err=True)
                typer.echo(f"{len(problems)} file(s) differ from the code; run "
                           "`linkstack specs build`", err=True)
                raise typer.Exit(1)
            typer.echo(f"{target}: {len(specs.PAGES)} files up to date")
            return
        typer.echo(f"{target}: wrote {len(changed)} of {len(specs.PAGES)} files"
                   + (f" ({', '.join(changed)})" if changed else ""))

    app.add_typer(group, name="specs")
