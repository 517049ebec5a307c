"""``linkstack run``: the end-to-end prompt round trip with its latency breakdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from linkstack.cli.options import (
    BackendOpt,
    ModelOpt,
    ScenarioSeedOpt,
    SetOpt,
    check_output,
    fail,
    read_text,
)
from linkstack.errors import ConfigError, LinkstackError

DEFAULT_SCENARIO = "default"


def load_backend(model: Path | None, backend: str, slots: int = 1) -> object:
    """The model backend named on the command line (the real model unless ``recorded:FILE``;
    ``slots`` llama.cpp contexts when more than 1)."""
    from linkstack.payload.backend import LlamaCppBackend, RecordedBackend

    if backend.startswith("recorded:"):
        path = Path(backend.split(":", 1)[1])
        text = read_text(path, "--backend")
        try:
            return RecordedBackend.from_json(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc.reason}", key="--backend") from None
    if backend != "llama":
        raise ConfigError(f"unknown backend {backend!r}: llama or recorded:FILE", key="--backend")
    try:
        if slots > 1:
            from linkstack.payload.serving import LlamaCppSlots

            return LlamaCppSlots(slots, model)
        return LlamaCppBackend(model)
    except ConfigError as exc:
        raise ConfigError(exc.reason, key="--model") from None

def check_recorded(backend: object, prompts: list[str]) -> None:
    """A recording answers every prompt of the run that reaches the model (else: one line
    naming ``--backend``, before any simulation). A prompt longer than the endpoint takes is
    answered ``prompt_too_long`` without the model; a recording with a default answers all."""
    from linkstack.payload.backend import RecordedBackend
    from linkstack.payload.endpoint import EndpointConfig

    if not isinstance(backend, RecordedBackend) or backend.default is not None:
        return
    longest = EndpointConfig().max_prompt_octets
    missing = [p for p in dict.fromkeys(prompts)
               if p not in backend.recordings and len(p.encode("utf-8")) <= longest]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConfigError(f"the recording has no answer for the prompt {missing[0][:60]!r}{more}",
                          key="--backend")


def _is_constellation(data: dict[str, object]) -> bool:
    from linkstack.sims.constellation.scenario import is_constellation

    return is_constellation(data)


def render(report: object, console: Console) -> None:
    """Print answers, totals against the physical bound, and the breakdown table."""
    from linkstack.sims.roundtrip import RunReport

    assert isinstance(report, RunReport)
    console.print(f"[bold]scenario[/bold] {report.scenario}: " + " → ".join(report.segments))
    for i, p in enumerate(report.prompts, 1):
        console.print(f"\n[bold]prompt {i}[/bold] (id {p.request_id}): {p.prompt}")
        console.print(f"  [green]answer[/green] ({p.status}, {p.prompt_tokens}+"
                      f"{p.completion_tokens} tokens): {p.answer.strip()}")
        console.print(f"  total {p.total_s:.6f} s   bound {p.bound_s:.6f} s   "
                      f"total/bound {p.ratio:.4f}")
        console.print(f"  ttft {p.ttft_s:.6f} s (first words; {p.segments} partial "
                      "result(s) before the answer)")
    rows = sorted({k for p in report.prompts for k, v in p.breakdown.items() if abs(v) > 1e-9},
                  key=lambda k: _row_order(k, report.segments))
    table = Table(title="latency breakdown (ms; rows sum to the total)", box=box.SIMPLE_HEAD)
    body = [[f"{1e3 * p.breakdown.get(row, 0.0):.3f}" for p in report.prompts] for row in rows]
    totals = [f"{1e3 * p.total_s:.3f}" for p in report.prompts]
    bounds = [f"{1e3 * p.bound_s:.3f}" for p in report.prompts]
    table.add_column("hop.component", no_wrap=True)
    for i in range(len(report.prompts)):
        width = max(len(cells[i]) for cells in [*body, totals, bounds])
        table.add_column(f"#{i + 1}", justify="right", no_wrap=True, min_width=width)
    for row, cells in zip(rows, body, strict=True):
        table.add_row(row, *cells)
    table.add_section()
    table.add_row("[bold]total[/bold]", *totals)
    table.add_row("ttft", *(f"{1e3 * p.ttft_s:.3f}" for p in report.prompts))
    table.add_row("bound", *bounds)
    table.add_row("total/bound", *(f"{p.ratio:.4f}" for p in report.prompts))
    console.print()
    console.print(table)
    s = report.summary()
    console.print(f"median total {s['total_s']['median']:.6f} s, p95 {s['total_s']['p95']:.6f} s;"
                  f" median ttft {s['ttft_s']['median']:.6f} s;"
                  f" median total/bound {s['ratio']['median']:.4f}")


def _row_order(row: str, segments: list[str]) -> tuple[int, int]:
    from linkstack.sims.breakdown import COMPONENTS

    name, _, comp = row.partition(".")
    pos = segments.index(name) if name in segments else len(segments)
    return pos, COMPONENTS.index(comp) if comp in COMPONENTS else len(COMPONENTS)


def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""

    @app.command("run")
    def run(
        scenario: Annotated[str, typer.Argument(
            help="Scenario name (sims/scenarios) or TOML file.")] = DEFAULT_SCENARIO,
        sets: SetOpt = None,
        prompts: Annotated[int | None, typer.Option(
            "--prompts", min=1, help="Number of prompts (cycles the scenario's list).")] = None,
        prompt: Annotated[list[str] | None, typer.Option(
            "--prompt", help="A prompt text (repeatable; replaces the scenario's list).")] = None,
        seed: ScenarioSeedOpt = None,
        model: ModelOpt = None,
        backend: BackendOpt = "llama",
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        pcap: Annotated[Path | None, typer.Option(
            "--pcap", help="Write every unit, frame and packet sent to this pcap file "
            "(virtual-time stamps).")] = None,
        hours: Annotated[float | None, typer.Option(
            "--hours", min=1e-6,
            help="Constellation scenarios: hours of traffic (default: the scenario's "
            "duration_s).")] = None,
    ) -> None:
        """Send prompts from the ground through the whole stack to the onboard model and back,
        in virtual time, and print each answer with its latency breakdown.

        A constellation scenario (one with a [constellation] table, e.g. star-compute) runs
        its users' traffic instead, routed over the changing ISLs."""
        from linkstack.sims.roundtrip import run_roundtrip
        from linkstack.sims.scenario import load_scenario, read_scenario_source

        overrides = list(sets or [])
        if seed is not None:
            overrides.append(f"scenario.seed={seed}")
        try:
            if _is_constellation(read_scenario_source(scenario)):
                from linkstack.cli.constellation import run_constellation_command

                for name, value in (("--prompts", prompts), ("--prompt", prompt),
                                    ("--pcap", pcap)):
                    if value:
                        raise ConfigError("not available for constellation scenarios "
                                          "(their prompts come from [traffic])", key=name)
                run_constellation_command(scenario, overrides, hours,
                                          load_backend(model, backend), as_json)
                return
            if hours is not None:
                raise ConfigError("only for constellation scenarios", key="--hours")
            check_output(pcap, "--pcap")
            sc = load_scenario(scenario, overrides)
            texts = list(prompt) if prompt else list(sc.run.prompts)
            if prompts is not None:
                texts = [texts[i % len(texts)] for i in range(prompts)]
            be = load_backend(model, backend)
            check_recorded(be, texts)
            report = run_roundtrip(sc, be, prompts=texts, pcap=pcap)  # type: ignore[arg-type]
        except LinkstackError as exc:
            raise fail(exc) from None  # one line: no wrapping, no markup
        if as_json:
            typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            render(report, Console())
