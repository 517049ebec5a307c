"""``linkstack constellation``: contact plans and maps of a constellation scenario; and the
constellation side of ``linkstack run`` (many users, routed over changing ISLs)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from linkstack.cli.options import ScenarioArg, SetOpt, check_output, fail
from linkstack.cli.options import group as command_group
from linkstack.errors import ConfigError, LinkstackError

__all__ = ["register", "run_constellation_command"]


def _load(scenario: str, sets: list[str] | None) -> Any:
    from linkstack.sims.constellation.scenario import load_constellation

    return load_constellation(scenario, list(sets or []))


def run_constellation_command(scenario: str, overrides: list[str], hours: float | None,
                              backend: Any, as_json: bool) -> None:
    """``linkstack run`` on a constellation scenario: simulate, then print or dump JSON."""
    from linkstack.sims.constellation.simulate import run_constellation
    from linkstack.sims.memo import MemoBackend

    sc = _load(scenario, overrides)
    duration = sc.duration_s if hours is None else hours * 3600.0
    report = run_constellation(sc, MemoBackend(backend), duration_s=duration)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
        return
    render(report, Console())


def render(report: Any, console: Console) -> None:
    """Summary, a breakdown of the median prompt, and the routes of a few prompts."""
    s = report.summary()
    console.print(f"[bold]scenario[/bold] {report.scenario}: {report.satellites} satellites, "
                  f"{report.stations} ground stations, {report.plan_contacts} contacts in the "
                  f"plan; policy [bold]{report.policy}[/bold]; "
                  f"{report.duration_s / 3600:g} h of traffic")
    table = Table(title="summary", box=box.SIMPLE_HEAD)
    table.add_column("key")
    table.add_column("value", justify="right")
    for key, value in s.items():
        table.add_row(key, _fmt(value))
    console.print(table)
    done = sorted((p for p in report.prompts if p.status == "ok"), key=lambda p: p.total_s)
    if not done:
        return
    median = done[len(done) // 2]
    bd = Table(title=f"median prompt (id {median.request_id}, from {median.station}): "
               "breakdown (s; rows sum to the total)", box=box.SIMPLE_HEAD)
    bd.add_column("component")
    bd.add_column("s", justify="right")
    for key, value in median.breakdown.items():
        bd.add_row(key, f"{value:.6f}")
    bd.add_section()
    bd.add_row("[bold]total[/bold]", f"{median.total_s:.6f}")
    console.print(bd)
    console.print(f"  up:   {' → '.join(median.route_up)}")
    console.print(f"  down: {' → '.join(median.route_down)}")
    console.print(f"  answer: {median.answer.strip()}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Add ``constellation contacts`` and ``constellation plot`` to ``app``."""
    group = command_group("Contact plans and maps of constellation scenarios.")
    app.add_typer(group, name="constellation")

    @group.command("contacts")
    def contacts(
        scenario: ScenarioArg,
        sets: SetOpt = None,
        hours: Annotated[float, typer.Option(
            "--hours", min=1e-6, help="Length of the plan.")] = 1.0,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Write the plan here (default: standard output).")] = None,
    ) -> None:
        """The contact plan in ION's text format (``a contact`` / ``a range`` lines)."""
        from linkstack.sims.constellation.contacts import to_ion
        from linkstack.sims.constellation.simulate import build_world

        try:
            check_output(out, "--out")
            world = build_world(_load(scenario, sets), hours * 3600.0)
            text = to_ion(world.plan)
            if out is None:
                typer.echo(text, nl=False)
            else:
                out.write_text(text, encoding="utf-8")
        except LinkstackError as exc:
            raise fail(exc) from None
        if out is not None:
            Console(stderr=True).print(f"{len(world.plan.contacts)} contacts → {out}")

    @group.command("plot")
    def plot(
        scenario: ScenarioArg,
        out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
        at: Annotated[float, typer.Option(
            "--at", min=0.0, help="Scenario time of the map, seconds.")] = 0.0,
        report: Annotated[Path | None, typer.Option(
            "--report", help="A `linkstack run SCENARIO --json` output: adds its latency CDF.")
        ] = None,
        sets: SetOpt = None,
    ) -> None:
        """Satellites, available ISLs and ground links on a world map at time ``--at``."""
        from linkstack.sims.constellation.simulate import build_world

        try:
            check_output(out, "--out")
            totals = _report_totals(report) if report is not None else None
            world = build_world(_load(scenario, sets), at + 60.0)
            plot_world(world, at, out, totals)
        except LinkstackError as exc:
            raise fail(exc) from None
        Console(stderr=True).print(f"map at t = {at:g} s → {out}")


def _report_totals(path: Path) -> list[float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return sorted(p["total_s"] for p in data["prompts"] if p["status"] == "ok")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"not a `linkstack run --json` report of a constellation: {exc}",
                          key="--report") from None


def _lat_lon(p: Any) -> tuple[Any, Any]:
    import numpy as np

    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


def plot_world(world: Any, t: float, out: Path, totals: list[float] | None = None) -> None:
    """Draw the map (and the CDF of ``totals``) with matplotlib only (no map library)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    con = world.constellation
    sats = np.array(world.satellites)
    pos = np.array([con.position_km(int(s), t) for s in sats])
    lat, lon = _lat_lon(pos)
    ncols = 2 if totals is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(11 if ncols == 1 else 17, 6), squeeze=False)
    ax = axes[0][0]
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("geocentric latitude (deg)")
    ax.grid(alpha=0.3)
    index = {int(s): i for i, s in enumerate(sats)}
    isl = [(c.frm, c.to) for c in world.plan.contacts
           if c.start_s <= t < c.end_s and c.frm in index and c.to in index and c.frm < c.to]
    for a, b in isl:
        i, j = index[a], index[b]
        if abs(lon[i] - lon[j]) < 180:  # lines that cross the date line are not drawn
            ax.plot([lon[i], lon[j]], [lat[i], lat[j]], color="tab:orange", lw=0.4, alpha=0.6)
    computing = np.array([int(s) in world.computing for s in sats])
    ax.scatter(lon[computing], lat[computing], s=6 if len(sats) > 100 else 24, c="tab:blue",
               label=f"computing satellites ({int(computing.sum())})", zorder=3)
    if (~computing).any():
        ax.scatter(lon[~computing], lat[~computing], s=6, c="tab:gray",
                   label=f"relay satellites ({int((~computing).sum())})", zorder=3)
    for st, spec in zip(world.stations, world.scenario.stations, strict=True):
        ax.scatter([spec.longitude_deg], [spec.latitude_deg], marker="^", s=60, c="tab:red",
                   zorder=4)
        ax.annotate(spec.name, (spec.longitude_deg, spec.latitude_deg), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
        for sat in con.visible(st, t):
            i = index[int(sat)]
            ax.plot([spec.longitude_deg, lon[i]], [spec.latitude_deg, lat[i]], color="tab:red",
                    lw=0.8, alpha=0.7)
    ax.set_title(f"{world.scenario.name} at t = {t:g} s: {len(isl)} ISLs up")
    ax.legend(loc="lower left", fontsize=8)
    if totals is not None:
        cdf = axes[0][1]
        if totals:
            ys = np.arange(1, len(totals) + 1) / len(totals)
            cdf.step(totals, ys, where="post")
            cdf.set_xscale("log")
        cdf.axvline(120.0, color="tab:red", ls="--", lw=0.8, label="120 s")
        cdf.set_xlabel("total latency (s)")
        cdf.set_ylabel("fraction of answered prompts")
        cdf.set_title(f"latency CDF ({len(totals)} answered)")
        cdf.grid(alpha=0.3)
        cdf.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
