"""``linkstack sweep`` and ``linkstack tune``: latency over a grid of settings, and the search for
the protocol settings that minimise it under a scenario's channel conditions.

Both send the scenario's prompts through the whole stack in virtual time
(:func:`linkstack.sims.roundtrip.run_roundtrip`) many times; the model runs once per prompt and
every later run replays its answer and measured inference time
(:class:`linkstack.sims.memo.MemoBackend`), so the comparison is the protocol's alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from linkstack.cli.options import ModelOpt, ScenarioSeedOpt
from linkstack.errors import LinkstackError

DEFAULT_SCENARIO = "default"


@contextmanager
def _progress(console: Console, what: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar; yields ``update(done, total)``."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _backend(model: Path | None, backend: str) -> Any:
    from linkstack.cli.run import load_backend
    from linkstack.sims.memo import MemoBackend

    return MemoBackend(load_backend(model, backend))  # type: ignore[arg-type]


def _overrides(sets: list[str] | None, seed: int | None) -> list[str]:
    out = list(sets or [])
    if seed is not None:
        out.append(f"scenario.seed={seed}")
    return out


def register(app: typer.Typer) -> None:
    """Add ``sweep`` and ``tune`` to ``app``."""

    @app.command("sweep")
    def sweep(
        scenario: Annotated[str, typer.Argument(
            help="Scenario name (sims/scenarios) or TOML file.")] = DEFAULT_SCENARIO,
        vary: Annotated[list[str] | None, typer.Option(
            "--vary", help="KEY=V1,V2,... (repeatable; the first is the x axis). KEY is a "
            "dotted scenario key, may use * (links.*.ber) or + (a+b); 'ber' = every link's "
            "BER.")] = None,
        repeat: Annotated[int, typer.Option(
            "--repeat", min=1, help="Runs per point, seeds seed..seed+N-1.")] = 1,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Output folder (default: sweep-<scenario>).")] = None,
        sets: Annotated[list[str] | None, typer.Option(
            "--set", help="Fixed override KEY=VALUE (repeatable).")] = None,
        prompts: Annotated[int | None, typer.Option(
            "--prompts", min=1, help="Prompts per run (cycles the scenario's list).")] = None,
        seed: ScenarioSeedOpt = None,
        model: ModelOpt = None,
        backend: Annotated[str, typer.Option(
            "--backend", help="llama (default) or recorded:FILE.")] = "llama",
    ) -> None:
        """Run the round trip over a grid of settings; write a CSV and a PNG plot of the
        median and p95 latency against the varied keys."""
        from linkstack.sims.sweep import (
            plot_sweep,
            run_sweep,
            short_label,
            write_samples_csv,
            write_sweep_csv,
        )

        err = Console(stderr=True)
        if not vary:
            raise typer.BadParameter("give at least one --vary KEY=V1,V2,...",
                                     param_hint="--vary")
        try:
            be = _backend(model, backend)
            with _progress(err, "sweep") as update:
                result = run_sweep(scenario, vary, be, sets=_overrides(sets, seed),
                                   n_prompts=prompts, repeat=repeat, progress=update)
            folder = out or Path(f"sweep-{result.scenario}")
            folder.mkdir(parents=True, exist_ok=True)
            csv_path = write_sweep_csv(result, folder / "sweep.csv")
            samples_path = write_samples_csv(result, folder / "samples.csv")
            png_path = plot_sweep(result, folder / "sweep.png")
        except LinkstackError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        console = Console()
        labels = [v.label for v in result.varies]
        table = Table(title=f"{result.scenario}: {result.prompts} prompts x {result.repeat} "
                      "run(s) per point (seconds)")
        for label in labels:
            table.add_column(short_label(label), overflow="fold")
        for col in ("median", "p95", "median total/bound", "timeouts"):
            table.add_column(col, justify="right")
        for point in result.points:
            s = point.stats
            table.add_row(*(point.values[k] for k in labels), f"{s.median_total_s:.6f}",
                          f"{s.p95_total_s:.6f}", f"{s.median_ratio:.4f}", str(s.timeouts))
        console.print(table)
        console.print(be.describe())
        console.print(f"wrote {csv_path}, {samples_path}, {png_path}")

    @app.command("tune")
    def tune(
        scenario: Annotated[str, typer.Argument(
            help="Scenario name (sims/scenarios) or TOML file.")] = DEFAULT_SCENARIO,
        objective: Annotated[str, typer.Option(
            "--objective", help="p95 or median of the total latency.")] = "p95",
        budget: Annotated[int, typer.Option(
            "--budget", min=1, help="Settings evaluated at most (defaults included).")] = 40,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Scenario file to write (default: <scenario>-tuned.toml).")] = None,
        sets: Annotated[list[str] | None, typer.Option(
            "--set", help="Channel condition KEY=VALUE (repeatable), e.g. "
            "links.uplink.ber=1e-4.")] = None,
        prompts: Annotated[int | None, typer.Option(
            "--prompts", min=1, help="Prompts per run (cycles the scenario's list).")] = None,
        repeat: Annotated[int, typer.Option(
            "--repeat", min=1, help="Runs per evaluation, seeds seed..seed+N-1.")] = 1,
        seed: ScenarioSeedOpt = None,
        model: ModelOpt = None,
        backend: Annotated[str, typer.Option(
            "--backend", help="llama (default) or recorded:FILE.")] = "llama",
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Search frame length, coding, ARQ window and timers for the scenario's channel
        conditions; print the best settings and the gain over the scenario's own, and write
        them as a scenario file."""
        from linkstack.sims.tune import tune as run_tune
        from linkstack.sims.tune import tuned_scenario_text

        err = Console(stderr=True)
        if objective not in ("p95", "median"):
            raise typer.BadParameter("p95 or median", param_hint="--objective")
        conditions = _overrides(sets, seed)
        try:
            be = _backend(model, backend)
            with _progress(err, "tune") as update:
                evaluated = 0

                def on_trial(trial: Any, total: int) -> None:
                    nonlocal evaluated
                    evaluated += trial.evaluation is not None
                    update(evaluated, total)

                result = run_tune(scenario, be, sets=conditions, objective=objective,
                                  budget=budget, n_prompts=prompts, repeat=repeat,
                                  on_trial=on_trial)
            text = tuned_scenario_text(scenario, result)
            path = out or Path(f"{result.scenario}-tuned.toml")
            path.write_text(text, encoding="utf-8")
        except LinkstackError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        d, b = result.default.stats, result.best.stats
        changed = result.changed()
        if as_json:
            typer.echo(json.dumps({
                "scenario": result.scenario, "objective": objective,
                "evaluations": result.evaluations, "budget": budget,
                "conditions": list(result.conditions),
                "default": d.as_dict(), "tuned": b.as_dict(),
                "improvement": result.improvement,
                "changed": {k: {"default": a, "tuned": z} for k, (a, z) in changed.items()},
                "overrides": result.best_overrides(), "written": str(path),
            }, indent=2))
            return
        console = Console()
        table = Table(title=f"best settings for {result.scenario} "
                      f"({', '.join(result.conditions) or 'its own conditions'})")
        table.add_column("setting")
        table.add_column("default")
        table.add_column("tuned")
        for knob in result.knobs:
            a = knob.options[knob.default].label
            z = knob.options[result.best_assignment[knob.name]].label
            table.add_row(knob.name, a, f"[bold green]{z}[/bold green]" if a != z else z)
        console.print(table)
        console.print(f"defaults: median {d.median_total_s:.6f} s, p95 {d.p95_total_s:.6f} s, "
                      f"median total/bound {d.median_ratio:.4f}, timeouts {d.timeouts}")
        console.print(f"tuned:    median {b.median_total_s:.6f} s, p95 {b.p95_total_s:.6f} s, "
                      f"median total/bound {b.median_ratio:.4f}, timeouts {b.timeouts}")
        console.print(f"improvement of the {objective}: {100 * result.improvement:.2f} % "
                      f"({result.evaluations} evaluations of {d.prompts} prompts)"
                      + ("" if changed else " — nothing beat the defaults, kept"))
        console.print(be.describe())
        console.print(f"wrote {path}")
