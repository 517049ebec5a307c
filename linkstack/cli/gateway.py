"""``linkstack gateway``: the MQTT ground gateway (see :mod:`linkstack.gateway.mqtt`).

::

    linkstack gateway --broker mqtt://127.0.0.1:1883                       # model in-process
    linkstack gateway --broker mqtt://127.0.0.1:1883 \\
        --listen 127.0.0.1:7002 --peer 127.0.0.1:7001                       # over the RF link

With ``--peer`` the gateway is the ground station of ``linkstack serve --role satellite``
(prompts cross the RF hop over UDP, ``--service udp``); without it each prompt runs through the
scenario's whole stack in virtual time (``--service sim``,
:class:`linkstack.sims.simulated_service.SimulatedLinkService`). ``--service local``
skips the link: the payload codec and the model endpoint in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from linkstack.cli.options import SetOpt
from linkstack.errors import ConfigError, LinkstackError


async def _main(args: dict[str, Any]) -> int:
    from linkstack.gateway.mqtt import Gateway, GatewayConfig, compute_spacecraft, parse_broker_url
    from linkstack.sims.scenario import load_scenario

    host, port = parse_broker_url(args["broker"])
    scenario = load_scenario(args["scenario"], list(args["sets"] or []))
    spacecraft = args["spacecraft"] or compute_spacecraft(scenario)
    node = scenario.nodes.get(spacecraft)
    if node is None or node.kind != "satellite":
        raise ConfigError(f"{spacecraft!r} is not a satellite of scenario {scenario.name}",
                          key="spacecraft")
    service_kind = args["service"]
    if service_kind == "auto":
        service_kind = "udp" if args["peer"] else "sim"
    service: Any
    if service_kind == "sim":
        from linkstack.cli.run import load_backend
        from linkstack.sims.simulated_service import SimulatedLinkService

        service = SimulatedLinkService(scenario, load_backend(args["model"], args["backend"]))
    elif service_kind == "local":
        from linkstack.cli.serve import _backend
        from linkstack.drivers.service import LocalEndpointService

        service = LocalEndpointService(_backend(args["model"], args["backend"]))
    elif service_kind == "udp":
        if not args["peer"]:
            raise ConfigError("--service udp needs --peer (the satellite's address)",
                              key="peer")
        from linkstack.cli.serve import _pcap
        from linkstack.drivers.udp import (
            UdpGroundService,
            parse_address,
            realtime_epoch_ns,
            rf_hop_config,
        )

        path = rf_hop_config(scenario)
        pcap = _pcap(args["pcap"], scenario, realtime_epoch_ns(asyncio.get_running_loop()))
        service = UdpGroundService(path.config, name=path.ground, spacecraft=spacecraft,
                                   pcap=pcap)
        await service.start(parse_address(args["listen"]), parse_address(args["peer"]))
    else:
        raise ConfigError(f"{service_kind!r}: auto, sim, udp or local", key="service")
    config = GatewayConfig(host=host, port=port, spacecraft=spacecraft,
                           client_id=args["client_id"], max_in_flight=args["max_in_flight"],
                           status_interval_s=args["status_interval"],
                           journal=str(args["journal"]) if args["journal"] else None)
    gateway = Gateway(service, config)
    print(f"gateway for {spacecraft} ({service_kind} service) on mqtt://{host}:{port}: "
          f"prompts on {gateway.prompt_topic}, results on {gateway.result_prefix}<id>, "
          f"status on {gateway.status_topic}", file=sys.stderr, flush=True)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
    try:
        await gateway.run()
    except asyncio.CancelledError:
        pass
    finally:
        closer = getattr(service, "aclose", None)
        if closer is not None:
            await closer()
        pcap = getattr(service, "pcap", None)
        if pcap is not None:
            pcap.close()
    return 0


def register(app: typer.Typer) -> None:
    """Add ``gateway`` to ``app``."""

    @app.command("gateway")
    def gateway(
        broker: Annotated[str, typer.Option(
            "--broker", help="mqtt://HOST:PORT of the MQTT broker.")],
        scenario: Annotated[str, typer.Option(
            "--scenario", help="Scenario name (sims/scenarios) or TOML file.")] = "default",
        sets: SetOpt = None,
        spacecraft: Annotated[str | None, typer.Option(
            "--spacecraft", help="Topic spacecraft (default: the scenario's compute "
            "satellite, sat1 in the default scenario).")] = None,
        service: Annotated[str, typer.Option(
            "--service", help="sim: the scenario's whole stack in virtual time; udp: the RF "
            "link to a 'serve --role satellite' process; local: the model in this process "
            "(no link); auto: udp with --peer, else sim.")] = "auto",
        listen: Annotated[str, typer.Option(
            "--listen", help="udp: HOST:PORT to bind.")] = "127.0.0.1:0",
        peer: Annotated[str | None, typer.Option(
            "--peer", help="udp: HOST:PORT of the satellite (or the channel process).")
        ] = None,
        model: Annotated[Path | None, typer.Option(
            "--model", help="sim/local: a GGUF file (default: Gemma 3 270M Q4_K_M).")] = None,
        backend: Annotated[str, typer.Option(
            "--backend", help="sim/local: llama (default) or recorded:FILE.")] = "llama",
        client_id: Annotated[str | None, typer.Option(
            "--client-id", help="MQTT client id (default linkstack-gateway-<spacecraft>).")
        ] = None,
        max_in_flight: Annotated[int, typer.Option(
            "--max-in-flight", min=1, help="Prompts forwarded at once.")] = 4,
        status_interval: Annotated[float, typer.Option(
            "--status-interval", min=0.1, help="Seconds between status messages.")] = 5.0,
        pcap: Annotated[Path | None, typer.Option(
            "--pcap", help="udp: write every unit, frame and packet sent.")] = None,
        journal: Annotated[Path | None, typer.Option(
            "--journal", help="File of the prompts taken and not yet answered; started on "
            "it again after a crash, the gateway forwards them again.")] = None,
    ) -> None:
        """Bridge MQTT prompts (linkstack/<spacecraft>/prompt) to the link and publish the
        results and the link status; QoS 1, reconnects and resumes after a broker restart."""
        args = {"broker": broker, "scenario": scenario, "sets": sets,
                "spacecraft": spacecraft, "service": service, "listen": listen, "peer": peer,
                "model": model, "backend": backend, "client_id": client_id,
                "max_in_flight": max_in_flight, "status_interval": status_interval,
                "pcap": pcap, "journal": journal}
        try:
            code = asyncio.run(_main(args))
        except LinkstackError as exc:
            Console(stderr=True).print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            code = 130
        raise typer.Exit(code)
