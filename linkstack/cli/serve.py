"""``linkstack serve`` and ``linkstack channel``: the stack over real UDP between processes.

Two terminals (add a third with ``linkstack channel`` between them for the link's delay, rate
and losses)::

    linkstack serve --role satellite --listen 127.0.0.1:7001 --peer 127.0.0.1:7002
    linkstack serve --role ground    --listen 127.0.0.1:7002 --peer 127.0.0.1:7001

The ground reads prompts from stdin (one per line) or ``--prompt`` (repeatable) and prints
each answer with its timings. The satellite also accepts CFDP uploads (APID 0x102) from
``linkstack upload FILE --peer HOST:PORT``: files go to its store (the scenario's
``store_octets``), a verified ``.gguf`` model is written to ``--models`` and swapped in once
llama.cpp loads it; Results then name the new model (``<name>@v2``). Both ends take the RF
hop's parameters (frame sizes, coding, COP-1 window and timers) from the scenario's first hop
(``--scenario``, default ``default``).

Run as a module (``python -m linkstack.cli.serve serve ...``) it works without the main
``linkstack`` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from linkstack.cli.options import (
    BACKEND_ENV,
    HELP_MARKUP,
    SetOpt,
    SlotsOpt,
    StreamMsOpt,
    StreamTokensOpt,
    check_output,
    fail,
)
from linkstack.errors import LinkstackError

DEFAULT_SCENARIO = "default"


def _scenario(name: str, sets: list[str] | None) -> Any:
    from linkstack.sims.scenario import load_scenario

    return load_scenario(name, list(sets or []))


def _backend(model: Path | None, backend: str, slots: int = 1) -> Any:
    """The model backend named on the command line; a recording is replayed in real time."""
    from linkstack.cli.run import load_backend
    from linkstack.drivers.udp import PacedBackend

    be = load_backend(model, backend, slots)
    return PacedBackend(be) if backend.startswith("recorded:") else be  # type: ignore[arg-type]


def _pcap(path: Path | None, scenario: Any, epoch_ns: int) -> Any:
    """A live capture (nanosecond wall-clock timestamps, flushed per record) with the
    scenario's node addresses, or None."""
    if path is None:
        return None
    from linkstack.capture.pcap import PcapWriter, node_addresses

    check_output(path, "--pcap")

    return PcapWriter(path, nanosecond=True, epoch_ns=epoch_ns, autoflush=True,
                      addresses=node_addresses(scenario.nodes))


def _stop_on_signals(task: asyncio.Task[Any]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)


def _format(prompt: str, result: Any) -> str:
    b = result.breakdown
    parts = " + ".join(f"{k} {v:.3f}" for k, v in b.items())
    tokens = ""
    if "prompt_tokens" in result.info:
        tokens = f"; {result.info['prompt_tokens']}+{result.info['completion_tokens']} tokens"
    return (f"> {prompt}\n{result.text}\n  [{result.status}] total {result.total_s:.3f} s"
            f" = {parts} s{tokens}")


async def _prompts_from_stdin() -> Any:
    """Lines of stdin, read by a daemon thread (a blocked ``readline`` must not keep the
    process alive after Ctrl-C, as a default-executor thread would)."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    while (line := await lines.get()) is not None:
        text = line.strip()
        if text:
            yield text


async def _ground(args: dict[str, Any]) -> int:
    from linkstack.drivers.udp import (
        UdpGroundService,
        parse_address,
        realtime_epoch_ns,
        rf_hop_config,
    )
    from linkstack.sims.topology import rf_end_sdls

    scenario = _scenario(args["scenario"], args["sets"])
    path = rf_hop_config(scenario)
    spacecraft = path.spacecraft
    loop = asyncio.get_running_loop()
    pcap = _pcap(args["pcap"], scenario, realtime_epoch_ns(loop))
    sdls = rf_end_sdls(path.hop, "ground", args["sdls_state"])
    ground = UdpGroundService(path.config, timeout_s=args["timeout"],
                              name=args["name"] or path.ground, spacecraft=spacecraft, pcap=pcap,
                              sdls=sdls)
    failures = 0
    try:
        address = await ground.start(parse_address(args["listen"], key="--listen"),
                                     parse_address(args["peer"], key="--peer"))
        print(f"ground station {ground.name} on {address[0]}:{address[1]} → {spacecraft} at "
              f"{args['peer']} (scenario {scenario.name}, RF hop {path.hop.name})",
              file=sys.stderr, flush=True)
        prompts = args["prompts"]
        source = _iterate(prompts) if prompts else _prompts_from_stdin()
        count = 0
        async for text in source:
            count += 1
            result = await ground.ask(str(count), text, args["max_tokens"])
            if result.status != "ok":
                failures += 1
            if args["json"]:
                print(json.dumps({"prompt": text, "status": result.status, "text": result.text,
                                  "total_s": result.total_s, "breakdown": result.breakdown,
                                  **result.info}, ensure_ascii=False), flush=True)
            else:
                print(_format(text, result), flush=True)
        if args["json"]:
            print(json.dumps({"status": ground.status()}), flush=True)
    finally:
        await ground.aclose()
        if pcap is not None:
            pcap.close()
    return 1 if failures else 0


async def _iterate(items: list[str]) -> Any:
    for item in items:
        yield item


def _files(path: Any, scenario: Any, name: str, backend: Any, models: Path) -> tuple[Any, Any]:
    """The satellite's file service and its model (swapped by verified uploads)."""
    from linkstack.cfdp.filestore import MemoryFilestore
    from linkstack.cfdp.models import ModelInfo, ModelRegistry
    from linkstack.drivers.files import OnboardFiles
    from linkstack.payload.swap import SwappableBackend, gguf_loader

    swappable = SwappableBackend(backend, loader=gguf_loader(models))
    factory = backend.model_ids[0]
    registry = ModelRegistry(ModelInfo(factory, "", 0, factory, 1), on_swap=swappable.install)
    node = scenario.nodes.get(name)
    store = MemoryFilestore(capacity=getattr(node, "store_octets", None))
    return OnboardFiles(path.config, registry=registry, store=store), swappable


async def _satellite(args: dict[str, Any]) -> int:
    from linkstack.drivers.udp import UdpSatellite, parse_address, realtime_epoch_ns, rf_hop_config
    from linkstack.sims.topology import rf_end_sdls

    scenario = _scenario(args["scenario"], args["sets"])
    path = rf_hop_config(scenario)
    name = args["name"] or path.spacecraft
    from linkstack.drivers.udp import transport_for
    from linkstack.payload.endpoint import EndpointConfig

    sdls = rf_end_sdls(path.hop, "space", args["sdls_state"])  # before the model loads
    config = EndpointConfig(transport=transport_for(path.config), concurrency=args["slots"],
                            queue_limit=args["queue_limit"],
                            stream_tokens=args["stream_tokens"],
                            stream_interval_s=args["stream_ms"] / 1000)
    files, backend = _files(path, scenario, name,
                            _backend(args["model"], args["backend"], args["slots"]),
                            args["models"])
    loop = asyncio.get_running_loop()
    pcap = _pcap(args["pcap"], scenario, realtime_epoch_ns(loop))
    sat = UdpSatellite(backend, path.config, endpoint_config=config, name=name,
                       ground=path.ground, pcap=pcap, sdls=sdls, files=files)
    try:
        address = await sat.start(parse_address(args["listen"], key="--listen"),
                                  parse_address(args["peer"], key="--peer"))
        print(f"satellite {name} listening on {address[0]}:{address[1]}, ground at "
              f"{args['peer']}, model {', '.join(backend.model_ids)}", flush=True)
        task = asyncio.current_task()
        assert task is not None
        _stop_on_signals(task)
        with contextlib.suppress(asyncio.CancelledError):
            await sat.wait()
    finally:
        print(f"satellite {name}: {json.dumps(sat.status())}", file=sys.stderr, flush=True)
        await sat.aclose()
        if pcap is not None:
            pcap.close()
    return 0


async def _channel(args: dict[str, Any]) -> int:
    from linkstack.drivers.channel_proxy import ChannelProfile, ChannelProxy
    from linkstack.drivers.udp import parse_address, rf_hop_config

    scenario = _scenario(args["scenario"], args["sets"])
    path_hop = rf_hop_config(scenario).hop
    overrides = {k: v for k, v in (("delay_s", args["delay"]), ("rate_bps", args["rate"]),
                                   ("ber", args["ber"]), ("erasure", args["loss"]))
                 if v is not None}
    uplink = ChannelProfile.from_link(path_hop.forward, outages=args["outages"],
                                      overrides=overrides)
    downlink = ChannelProfile.from_link(path_hop.back, outages=args["outages"],
                                        overrides=overrides)
    proxy = ChannelProxy(uplink, downlink, seed=args["seed"],
                         ground_peer=parse_address(args["ground"], key="--ground"),
                         space_peer=parse_address(args["satellite"], key="--satellite"))
    await proxy.start(parse_address(args["ground_side"], key="--ground-side"),
                      parse_address(args["space_side"], key="--space-side"))
    g, s = proxy.addresses["ground"], proxy.addresses["space"]
    print(f"channel: ground side {g[0]}:{g[1]} ({uplink.name}: "
          f"{_describe(uplink)}), space side {s[0]}:{s[1]} ({downlink.name}: "
          f"{_describe(downlink)})", flush=True)
    task = asyncio.current_task()
    assert task is not None
    _stop_on_signals(task)
    try:
        while True:
            await asyncio.sleep(args["status_interval"])
            print(json.dumps(proxy.status()), flush=True)
    except asyncio.CancelledError:
        pass
    finally:
        print(json.dumps(proxy.status()), flush=True)
        proxy.close()
    return 0


def _describe(p: Any) -> str:
    rate = "unlimited" if p.rate_bps is None else f"{p.rate_bps:g} bit/s"
    return (f"{rate}, delay {p.propagation.delay_ns(0) / 1e9 * 1e3:.3f} ms at start, "
            f"BER {p.ber:g}, erasure {p.erasure:g}")


def _run(coro: Any) -> None:
    try:
        code = asyncio.run(coro)
    except LinkstackError as exc:  # one line, never wrapped to the terminal's width
        raise fail(exc) from None
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


ScenarioOpt = Annotated[str, typer.Option(
    "--scenario", help="Scenario name (sims/scenarios) or TOML file; its first hop is used.")]


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``channel`` to ``app``."""

    @app.command("serve")
    def serve(
        role: Annotated[str, typer.Option(
            "--role", help="ground or satellite.")],
        listen: Annotated[str, typer.Option(
            "--listen", metavar="HOST:PORT", help="HOST:PORT to bind (UDP).")],
        peer: Annotated[str, typer.Option(
            "--peer", metavar="HOST:PORT",
            help="HOST:PORT of the other end (or of the channel process).")],
        scenario: ScenarioOpt = DEFAULT_SCENARIO,
        sets: SetOpt = None,
        prompt: Annotated[list[str] | None, typer.Option(
            "--prompt", help="Ground: a prompt (repeatable); default: read stdin lines.")
        ] = None,
        max_tokens: Annotated[int, typer.Option(
            "--max-tokens", min=1, max=65535, help="Ground: tokens per answer.")] = 64,
        timeout: Annotated[float, typer.Option(
            "--timeout", min=0.001, help="Ground: seconds to wait for each result.")] = 900.0,
        model: Annotated[Path | None, typer.Option(
            "--model", help="Satellite: a GGUF file (default: Gemma 3 270M Q4_K_M).")] = None,
        backend: Annotated[str, typer.Option(
            "--backend", envvar=BACKEND_ENV,
            help="Satellite: llama (default) or recorded:FILE (a recording "
            "replayed in real time).")] = "llama",
        name: Annotated[str | None, typer.Option(
            "--name", help="This node's spacecraft name (default: the scenario's).")] = None,
        pcap: Annotated[Path | None, typer.Option(
            "--pcap", help="Write every unit, frame and packet this process sends.")] = None,
        as_json: Annotated[bool, typer.Option(
            "--json", help="Ground: one JSON object per answer.")] = False,
        sdls_state: Annotated[Path | None, typer.Option(
            "--sdls-state", help="With SDLS on the RF hop: a folder where this end keeps "
            "the IV/ARSN counters of what it sends, so that a restart never reuses an IV.")
        ] = None,
        models: Annotated[Path | None, typer.Option(
            "--models", help="Satellite: where uploaded models are written for llama.cpp "
            "(default: linkstack-uploads in the temporary directory).")] = None,
        slots: SlotsOpt = 1,
        queue_limit: Annotated[int, typer.Option(
            "--queue-limit", min=0, max=1_000_000,
            help="Satellite: prompts that may wait for a slot; more are answered busy.")] = 4,
        stream_tokens: StreamTokensOpt = 0,
        stream_ms: StreamMsOpt = 0.0,
    ) -> None:
        """Run one end of the stack over real UDP sockets, in real time.

        The satellite's --slots, --queue-limit, --stream-tokens and --stream-ms set its model
        endpoint (parallel generations, waiting room, partial results)."""
        args = {"listen": listen, "peer": peer, "scenario": scenario, "sets": sets,
                "prompts": list(prompt or []), "max_tokens": max_tokens, "timeout": timeout,
                "model": model, "backend": backend, "name": name, "pcap": pcap,
                "json": as_json, "sdls_state": sdls_state,
                "models": models or Path(tempfile.gettempdir()) / "linkstack-uploads",
                "slots": slots, "queue_limit": queue_limit,
                "stream_tokens": stream_tokens, "stream_ms": stream_ms}
        if role == "ground":
            _run(_ground(args))
        elif role == "satellite":
            _run(_satellite(args))
        else:
            raise typer.BadParameter("ground or satellite", param_hint="--role")

    @app.command("channel")
    def channel(
        ground_side: Annotated[str, typer.Option(
            "--ground-side", metavar="HOST:PORT",
            help="HOST:PORT the ground sends to (its --peer).")],
        space_side: Annotated[str, typer.Option(
            "--space-side", metavar="HOST:PORT",
            help="HOST:PORT the satellite sends to (its --peer).")],
        ground: Annotated[str, typer.Option(
            "--ground", metavar="HOST:PORT",
            help="HOST:PORT of the ground (its --listen).")],
        satellite: Annotated[str, typer.Option(
            "--satellite", metavar="HOST:PORT",
            help="HOST:PORT of the satellite (its --listen).")],
        scenario: ScenarioOpt = DEFAULT_SCENARIO,
        sets: SetOpt = None,
        seed: Annotated[int, typer.Option(
            "--seed", min=0, help="Seed of the channel's error and loss draws.")] = 1,
        delay: Annotated[float | None, typer.Option(
            "--delay", min=0.0, help="Fixed one-way delay, seconds (both directions).")
        ] = None,
        rate: Annotated[float | None, typer.Option(
            "--rate", min=1.0, help="Bit rate, bit/s (both directions).")] = None,
        ber: Annotated[float | None, typer.Option(
            "--ber", min=0.0, max=0.4999, help="Bit error rate (both directions).")] = None,
        loss: Annotated[float | None, typer.Option(
            "--loss", min=0.0, max=1.0, help="Unit erasure probability (both directions).")
        ] = None,
        outages: Annotated[bool, typer.Option(
            "--outages/--no-outages", help="Apply the scenario's visibility (pass windows).")
        ] = False,
        status_interval: Annotated[float, typer.Option(
            "--status-interval", min=0.1, help="Seconds between JSON status lines.")] = 10.0,
    ) -> None:
        """Relay UDP datagrams between ground and satellite with the RF hop's delay, rate and
        losses (the scenario's link profiles), in real time."""
        _run(_channel({"ground_side": ground_side, "space_side": space_side,
                       "ground": ground, "satellite": satellite, "scenario": scenario,
                       "sets": sets, "seed": seed, "delay": delay, "rate": rate, "ber": ber,
                       "loss": loss, "outages": outages, "status_interval": status_interval}))


def main() -> None:
    """``python -m linkstack.cli.serve serve|channel ...``."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                      no_args_is_help=True, rich_markup_mode=HELP_MARKUP)
    register(app)
    app()


if __name__ == "__main__":
    main()
