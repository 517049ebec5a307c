"""``linkstack upload`` and ``linkstack download``: files through the stack with CFDP.

Both run in virtual time (:mod:`linkstack.sims.file_transfer`): CFDP class 1 or 2 PDUs in
Space Packets on APID 0x102, over the scenario's hops, across as many passes as the file
needs, with a progress bar (octets, passes, time left in virtual time). They report the total
time, the bound (the file's octets sent back to back at each hop's rate inside its contact
windows, plus propagation), the ratio, the octets retransmitted, the passes used and the
SHA-256 of the stored file. ``upload --swap`` (the default for ``.gguf`` files) installs the
file as the onboard model once its SHA-256 and size match the manifest sent with it.

``upload --peer HOST:PORT`` runs in real time instead, over UDP to ``linkstack serve --role
satellite`` (the scenario's RF hop, :mod:`linkstack.drivers.files`), and prints the same report
keys (the bound: the file at the uplink's rate plus propagation; ``sha256`` of the file sent,
which the satellite checks against the manifest before it installs a model).

Exit codes: 0 delivered (and verified), 1 the transfer ran and failed, 2 bad input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from linkstack.cli.options import DEFAULT_SCENARIO, ScenarioSeedOpt, SetOpt, check_output, fail
from linkstack.errors import ConfigError, LinkstackError

ClassOpt = Annotated[str, typer.Option(
    "--class", help="CFDP class: 1 (unacknowledged) or 2 (acknowledged: NAKs, EOF and "
    "Finished handshakes).")]
ScenarioNameOpt = Annotated[str, typer.Option(
    "--scenario", help="Scenario name (sims/scenarios) or TOML file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
PcapOpt = Annotated[Path | None, typer.Option(
    "--pcap", help="Write every coded unit, transfer frame and Space Packet sent, and each CFDP "
    "PDU on UDP port 52008 (tshark -d udp.port==52008,cfdp), to this pcap file.")]
TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", help="Give up (cancel) after this many virtual seconds (default: 4x the "
    "bound plus two hours).")]


def _class(value: str) -> int:
    if value.strip() not in ("1", "2"):
        raise ConfigError(f"{value!r}: CFDP class 1 or 2", key="--class")
    return int(value)


def _check_pcap(path: Path | None) -> None:
    check_output(path, "--pcap")


def _clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--:--:--"
    s = round(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@contextmanager
def _progress(console: Console, what: str, size: int,
              enabled: bool) -> Iterator[Callable[[Any], None] | None]:
    """A rich progress bar in virtual time: octets, passes, elapsed and time left."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
               TextColumn("pass {task.fields[passes]} {task.fields[contact]}"),
               TextColumn("T+{task.fields[elapsed]}"), TextColumn("ETA {task.fields[eta]}"))
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(what, total=size or None, passes=0, contact="", elapsed="0:00:00",
                            eta="--:--:--")

        def update(p: Any) -> None:
            bar.update(task, completed=p.octets, passes=p.passes,
                       contact="(in contact)" if p.in_contact else "(waiting for AOS)",
                       elapsed=_clock(p.elapsed), eta=_clock(p.eta_s))

        yield update


def _load(scenario: str, sets: list[str] | None, seed: int | None) -> Any:
    from linkstack.sims.scenario import load_scenario

    overrides = list(sets or [])
    if seed is not None:
        overrides.append(f"scenario.seed={seed}")
    return load_scenario(scenario, overrides)


def _render(report: Any, console: Console, out: Path | None = None) -> None:
    d = report.as_dict()
    verb = "upload" if report.direction == "upload" else "download"
    console.print(f"[bold]{verb}[/bold] {report.file} ({report.size} octets), CFDP class "
                  f"{report.transfer_class}, APID 0x{d['apid']:03X}, scenario "
                  f"{report.scenario}: " + " → ".join(report.hops))
    colour = "green" if report.status == "ok" else "red"
    console.print(f"  status     [{colour}]{report.status}[/{colour}]")
    console.print(f"  total      {report.total_s:.3f} s   bound {report.bound_s:.3f} s   "
                  f"total/bound {report.ratio:.4f}")
    console.print(f"  passes     {report.passes}")
    parts = ", ".join(f"{k} {v}" for k, v in report.retransmitted.items() if v)
    console.print(f"  retransmitted octets {report.retransmitted_octets}"
                  + (f" ({parts})" if parts else ""))
    console.print(f"  sha256     {report.sha256 or '-'}"
                  + (" (matches the source)" if report.sha256 == report.source_sha256
                     else " (differs from the source)"))
    if report.detail:
        console.print(f"  fault      {report.detail}")
    if report.model is not None:
        m = report.model
        active = (m.get("active") or {}).get("name", "-")
        console.print(f"  model      {'swapped in' if m.get('swapped') else 'NOT swapped'}: "
                      f"{m.get('reason')}; active model: {active}")
    if out is not None:
        console.print(f"  saved      {out}")


def _upload_udp(scenario: Any, data: bytes, name: str, peer: str, listen: str, cls: int,
                install: bool, entity: int, timeout_s: float) -> dict[str, Any]:
    """``upload --peer``: one upload in real time over the scenario's RF hop on UDP."""
    import asyncio

    from linkstack.drivers.files import UdpFileSender
    from linkstack.drivers.udp import parse_address, rf_hop_config

    try:
        peer_address = parse_address(peer)
    except ConfigError as exc:
        raise ConfigError(exc.reason, key="--peer") from None
    try:
        listen_address = parse_address(listen)
    except ConfigError as exc:
        raise ConfigError(exc.reason, key="--listen") from None
    if not 0 <= entity < 1 << 16:
        raise ConfigError(f"{entity} is outside 0..65535", key="--entity")
    path = rf_hop_config(scenario)
    up = path.hop.forward

    async def main() -> dict[str, Any]:
        sender = UdpFileSender(path.config, uplink_bps=up.rate_bps,
                               delay_s=up.build_propagation().delay_ns(0) / 1e9)
        try:
            await sender.start(listen_address, peer_address)
            return await sender.upload(data, name, transfer_class=cls,
                                       kind="model" if install else "file",
                                       dest_entity=entity, timeout_s=timeout_s)
        finally:
            await sender.aclose()

    return asyncio.run(main())


def _render_udp(report: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]upload[/bold] {report['file']} ({report['octets']} octets), CFDP "
                  f"class {report['class']}, over UDP in real time")
    colour = "green" if report["status"] == "ok" else "red"
    console.print(f"  status     [{colour}]{report['status']}[/{colour}]")
    bound = report["bound_s"]
    console.print(f"  total      {report['total_s']:.3f} s" + (
        f"   bound {bound:.3f} s   total/bound {report['ratio']:.3f}" if bound else ""))
    console.print(f"  retransmitted octets {report['retransmitted_octets']}")
    console.print(f"  sha256     {report['sha256']}")
    if report["detail"]:
        console.print(f"  fault      {report['detail']}")


def register(app: typer.Typer) -> None:
    """Add ``upload`` and ``download`` to ``app``."""

    @app.command("upload")
    def upload(
        file: Annotated[str, typer.Argument(help="The file to upload.", show_default=False)],
        to: Annotated[str | None, typer.Option(
            "--to", help="The satellite (default: the scenario's compute satellite).")] = None,
        scenario: ScenarioNameOpt = DEFAULT_SCENARIO,
        cfdp_class: ClassOpt = "2",
        sets: SetOpt = None,
        as_json: JsonOpt = False,
        swap: Annotated[bool | None, typer.Option(
            "--swap/--no-swap", help="Install the file as the onboard model once its SHA-256 "
            "and size verify (default: for .gguf files).")] = None,
        sha256: Annotated[str | None, typer.Option(
            "--sha256", help="The digest the file must have onboard (default: the local "
            "file's).")] = None,
        name: Annotated[str | None, typer.Option(
            "--as", help="Name onboard (default: models/<file name> for a model, "
            "uploads/<file name> otherwise).")] = None,
        timeout: TimeoutOpt = None,
        pcap: PcapOpt = None,
        entity: Annotated[int, typer.Option(
            "--entity", help="CFDP entity ID of the destination (the satellite's file service "
            "is 2; another ID is not in the ground's MIB and is refused: unknown_entity).")
        ] = 2,
        store_capacity: Annotated[int | None, typer.Option(
            "--store-capacity", help="Size of the onboard store in octets (simulation; "
            "a file that does not fit is refused: filestore_rejection).")] = None,
        cancel_after: Annotated[float | None, typer.Option(
            "--cancel-after", help="Cancel the upload from the ground after this many virtual "
            "seconds (status cancel_request_received; the old model stays).")] = None,
        seed: ScenarioSeedOpt = None,
        peer: Annotated[str | None, typer.Option(
            "--peer", help="Real time: upload over UDP to `linkstack serve --role satellite` "
            "at HOST:PORT (its --listen) instead of simulating.")] = None,
        listen: Annotated[str, typer.Option(
            "--listen", help="With --peer: HOST:PORT to bind (the satellite's --peer).")
        ] = "127.0.0.1:0",
    ) -> None:
        """Upload FILE to a satellite with CFDP through the whole stack, in virtual time, over
        as many passes as it needs (or, with --peer, in real time over UDP); optionally
        install it as the onboard model."""
        from linkstack.sims.file_transfer import check_satellite, run_upload

        err = Console(stderr=True)
        try:
            cls = _class(cfdp_class)
            path = Path(file)
            if not path.is_file():
                raise ConfigError(f"no such file: {file}", key="FILE")
            if timeout is not None and not timeout > 0:
                raise ConfigError("must be > 0", key="--timeout")
            _check_pcap(pcap)
            if name is not None and not name.strip("/ "):
                raise ConfigError("an onboard file name is needed", key="--as")
            data = path.read_bytes()
            install = swap if swap is not None else path.suffix.lower() == ".gguf"
            onboard = name or (f"models/{path.name}" if install else f"uploads/{path.name}")
            sc = _load(scenario, sets, seed)
            if peer is not None:
                for option, value in (("--store-capacity", store_capacity),
                                      ("--cancel-after", cancel_after), ("--pcap", pcap),
                                      ("--sha256", sha256), ("--to", to)):
                    if value is not None:
                        raise ConfigError("not with --peer (simulation only)", key=option)
                report = _upload_udp(sc, data, onboard, peer, listen, cls, install, entity,
                                     timeout or 600.0)
                if as_json:
                    typer.echo(json.dumps(report, indent=2))
                else:
                    _render_udp(report, Console())
                if report["status"] != "ok":
                    raise typer.Exit(1)
                return
            check_satellite(sc, to, "--to")
            with _progress(err, "upload", len(data), not as_json) as update:
                report = run_upload(sc, data, onboard, satellite=to, transfer_class=cls,
                                    swap=install, expected_sha256=sha256, timeout_s=timeout,
                                    progress=update, pcap=pcap, dest_entity=entity,
                                    store_capacity=store_capacity,
                                    cancel_after_s=cancel_after)
        except (LinkstackError, OSError) as exc:
            raise fail(exc if isinstance(exc, LinkstackError)
                       else ConfigError(str(exc), key="FILE")) from None
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            _render(report, Console())
        if report.status != "ok":
            raise typer.Exit(1)

    @app.command("download")
    def download(
        name: Annotated[str, typer.Argument(help="The file onboard, e.g. "
                                            "answers/long-answer.txt.", show_default=False)],
        source: Annotated[str | None, typer.Option(
            "--from", help="The satellite (default: the scenario's compute satellite).")
        ] = None,
        scenario: ScenarioNameOpt = DEFAULT_SCENARIO,
        cfdp_class: ClassOpt = "2",
        sets: SetOpt = None,
        as_json: JsonOpt = False,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Write the downloaded file here.")] = None,
        size: Annotated[int | None, typer.Option(
            "--size", min=1, help="Size in octets of the files the satellite produced "
            "(simulation).")] = None,
        place: Annotated[Path | None, typer.Option(
            "--place", help="A local file to put onboard as NAME first (as if produced "
            "there).")] = None,
        timeout: TimeoutOpt = None,
        pcap: PcapOpt = None,
        seed: ScenarioSeedOpt = None,
    ) -> None:
        """Download NAME, a file produced onboard (a long answer, a log), from a satellite:
        a CFDP Proxy Put Request goes up, the file comes down, in virtual time."""
        from linkstack.sims.file_transfer import (
            check_satellite,
            onboard_products,
            run_download,
        )

        err = Console(stderr=True)
        try:
            cls = _class(cfdp_class)
            if timeout is not None and not timeout > 0:
                raise ConfigError("must be > 0", key="--timeout")
            _check_pcap(pcap)
            onboard = onboard_products(size)
            if place is not None:
                if not place.is_file():
                    raise ConfigError(f"no such file: {place}", key="--place")
                onboard.put(name, place.read_bytes())
            sc = _load(scenario, sets, seed)
            check_satellite(sc, source, "--from")
            if not onboard.file_exists(Path(name)):
                raise ConfigError(f"no file {name!r} onboard (files: "
                                  f"{', '.join(onboard.names())})", key="NAME")
            total = len(onboard.get(name) or b"")
            with _progress(err, "download", total, not as_json) as update:
                report, data = run_download(sc, name, satellite=source, transfer_class=cls,
                                            onboard=onboard, timeout_s=timeout,
                                            progress=update, pcap=pcap)
            if out is not None and data is not None:
                out.write_bytes(data)
        except (LinkstackError, OSError) as exc:
            raise fail(exc if isinstance(exc, LinkstackError)
                       else ConfigError(str(exc), key="--out")) from None
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            _render(report, Console(), out if data is not None else None)
        if report.status != "ok":
            raise typer.Exit(1)
