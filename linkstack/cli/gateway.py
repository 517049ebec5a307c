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

Over TLS, with a client certificate and/or a user name and password::

    LINKSTACK_MQTT_PASSWORD=... linkstack gateway --broker mqtts://broker.example:8883 \\
        --ca-file ca.pem --cert-file gateway.pem --key-file gateway.key --username gateway

(``--tls-ca``, ``--tls-cert`` and ``--tls-key`` are other names of ``--ca-file``,
``--cert-file`` and ``--key-file``; errors name the latter.)

The password comes from ``--password-file`` (mode 0600) or the environment variable
``LINKSTACK_MQTT_PASSWORD``, never from the command line. An option error, an unusable or
unprotected certificate, key or password file, and a broker that refuses the first connection
(certificate not trusted, host name mismatch, credentials refused) are one ``error:`` line
naming the option, and exit status 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from linkstack.cli.options import (
    BACKEND_ENV,
    SetOpt,
    SlotsOpt,
    StreamMsOpt,
    StreamTokensOpt,
    check_output,
)
from linkstack.errors import ConfigError, LinkstackError

LISTEN_DEFAULT = "127.0.0.1:0"

# GatewayConfig / security keys → the option that sets them (errors name the option)
_OPTION_OF_KEY = {
    "broker": "--broker", "spacecraft": "--spacecraft", "service": "--service",
    "peer": "--peer", "journal": "--journal", "ca_file": "--ca-file",
    "cert_file": "--cert-file", "key_file": "--key-file", "username": "--username",
    "password_file": "--password-file", "password": "--password-file",
    "max_queued": "--max-queued", "connect_timeout": "--connect-timeout",
}


def _credentials(args: dict[str, Any]) -> tuple[str | None, str | None]:
    """(username, password) from ``--username`` and ``--password-file`` or the environment."""
    from linkstack.gateway.security import PASSWORD_ENV, read_password_file

    username = args["username"]
    if username is None:
        if args["password_file"] is not None:
            raise ConfigError("needs --username", key="password_file")
        return None, None
    if not username:
        raise ConfigError("empty", key="username")
    if args["password_file"] is not None:
        return username, read_password_file(args["password_file"], "password_file")
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        raise ConfigError(f"needs a password: --password-file FILE (mode 0600) or the "
                          f"environment variable {PASSWORD_ENV}", key="username")
    if not password:
        raise ConfigError("is empty", key=PASSWORD_ENV)
    return username, password


def _path(value: Path | None) -> str | None:
    return None if value is None else str(value)


async def _main(args: dict[str, Any]) -> int:
    from linkstack.gateway.mqtt import Gateway, GatewayConfig, compute_spacecraft, parse_broker_url
    from linkstack.gateway.security import client_tls_context
    from linkstack.sims.scenario import load_scenario

    host, port, tls = parse_broker_url(args["broker"])
    username, password = _credentials(args)
    security: dict[str, Any] = {
        "tls": tls, "ca_file": _path(args["ca_file"]), "cert_file": _path(args["cert_file"]),
        "key_file": _path(args["key_file"]), "username": username, "password": password}
    # the options and the files they name are checked before anything starts
    GatewayConfig(host=host, port=port, **security)
    if tls:
        client_tls_context(security["ca_file"], security["cert_file"], security["key_file"])
    scenario = load_scenario(args["scenario"], list(args["sets"] or []))
    spacecraft = args["spacecraft"] or compute_spacecraft(scenario)
    node = scenario.nodes.get(spacecraft)
    if node is None or node.kind != "satellite":
        raise ConfigError(f"{spacecraft!r} is not a satellite of scenario {scenario.name}",
                          key="spacecraft")
    service_kind = args["service"]
    if service_kind == "auto":
        service_kind = "udp" if args["peer"] else "sim"
    if service_kind != "udp":  # the udp service's options would be silently ignored
        for option, given in (("--listen", args["listen"] != LISTEN_DEFAULT),
                              ("--pcap", args["pcap"] is not None)):
            if given:
                raise ConfigError(f"only with --service udp (the service is {service_kind})",
                                  key=option)
    check_output(args["pcap"], "--pcap")
    service: Any
    if service_kind == "sim":
        from linkstack.cli.run import load_backend
        from linkstack.sims.simulated_service import SimulatedLinkService

        service = SimulatedLinkService(scenario, load_backend(args["model"], args["backend"]))
    elif service_kind == "local":
        from linkstack.cli.serve import _backend
        from linkstack.drivers.service import LocalEndpointService
        from linkstack.payload.endpoint import EndpointConfig

        service = LocalEndpointService(
            _backend(args["model"], args["backend"], args["slots"]),
            EndpointConfig(concurrency=args["slots"], stream_tokens=args["stream_tokens"],
                           stream_interval_s=args["stream_ms"] / 1000))
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
        await service.start(parse_address(args["listen"], key="--listen"),
                            parse_address(args["peer"], key="--peer"))
    else:
        raise ConfigError(f"{service_kind!r}: auto, sim, udp or local", key="service")
    config = GatewayConfig(host=host, port=port, spacecraft=spacecraft,
                           client_id=args["client_id"], max_in_flight=args["max_in_flight"],
                           max_queued=args["max_queued"],
                           connect_timeout_s=args["connect_timeout"],
                           status_interval_s=args["status_interval"],
                           journal=_path(args["journal"]), **security)
    gateway = Gateway(service, config)
    auth = ", ".join(
        ([f"CA {config.ca_file}" if config.ca_file else "system CAs"] if tls else [])
        + ([f"client certificate {config.cert_file}"] if config.cert_file else [])
        + ([f"user {username}"] if username else []))
    print(f"gateway for {spacecraft} ({service_kind} service) on "
          f"{'mqtts' if tls else 'mqtt'}://{host}:{port}{f' ({auth})' if auth else ''}: "
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
            "--broker", help="mqtt://HOST:PORT (plain TCP) or mqtts://HOST:PORT (TLS, port "
            "8883 by default) of the MQTT broker.")],
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
            "--listen", help="udp: HOST:PORT to bind.")] = LISTEN_DEFAULT,
        peer: Annotated[str | None, typer.Option(
            "--peer", help="udp: HOST:PORT of the satellite (or the channel process).")
        ] = None,
        model: Annotated[Path | None, typer.Option(
            "--model", help="sim/local: a GGUF file (default: Gemma 3 270M Q4_K_M).")] = None,
        backend: Annotated[str, typer.Option(
            "--backend", envvar=BACKEND_ENV,
            help="sim/local: llama (default) or recorded:FILE.")] = "llama",
        client_id: Annotated[str | None, typer.Option(
            "--client-id", help="MQTT client id (default linkstack-gateway-<spacecraft>).")
        ] = None,
        max_in_flight: Annotated[int, typer.Option(
            "--max-in-flight", min=1, help="Prompts forwarded at once.")] = 4,
        max_queued: Annotated[int, typer.Option(
            "--max-queued", min=1, help="Prompts taken and not yet answered at most; one more "
            "is answered 'busy' at once (bounds the gateway's memory and journal).")] = 1000,
        connect_timeout: Annotated[float | None, typer.Option(
            "--connect-timeout", min=0.1, help="Give up when no connection to the broker "
            "succeeded after this many seconds (default: retry for ever, each attempt "
            "logged).")] = None,
        status_interval: Annotated[float, typer.Option(
            "--status-interval", min=0.1, help="Seconds between status messages.")] = 5.0,
        pcap: Annotated[Path | None, typer.Option(
            "--pcap", help="udp: write every unit, frame and packet sent.")] = None,
        journal: Annotated[Path | None, typer.Option(
            "--journal", help="File of the prompts taken and not yet answered; started on "
            "it again after a crash, the gateway forwards them again.")] = None,
        ca_file: Annotated[Path | None, typer.Option(
            "--ca-file", "--tls-ca", help="mqtts: PEM CA certificate(s) the broker's "
            "certificate must chain to (default: the system's trusted CAs).")] = None,
        cert_file: Annotated[Path | None, typer.Option(
            "--cert-file", "--tls-cert", help="mqtts: PEM client certificate (with "
            "--key-file).")] = None,
        key_file: Annotated[Path | None, typer.Option(
            "--key-file", "--tls-key", help="mqtts: PEM private key of --cert-file, "
            "unencrypted, mode 0600.")] = None,
        username: Annotated[str | None, typer.Option(
            "--username", help="mqtts: MQTT user name; the password comes from "
            "--password-file or the environment variable LINKSTACK_MQTT_PASSWORD.")] = None,
        password_file: Annotated[Path | None, typer.Option(
            "--password-file", help="File holding the password (one line), mode 0600.")
        ] = None,
        slots: SlotsOpt = 1,
        stream_tokens: StreamTokensOpt = 0,
        stream_ms: StreamMsOpt = 0.0,
    ) -> None:
        """Bridge MQTT prompts (linkstack/<spacecraft>/prompt) to the link and publish the
        results and the link status; QoS 1, reconnects and resumes after a broker restart.

        With --service local, --slots, --stream-tokens and --stream-ms set the model endpoint
        (parallel generations; partial results published on result/<id>/partial). Over UDP
        they are the satellite's (linkstack serve --role satellite)."""
        args = {"broker": broker, "scenario": scenario, "sets": sets,
                "spacecraft": spacecraft, "service": service, "listen": listen, "peer": peer,
                "model": model, "backend": backend, "client_id": client_id,
                "max_in_flight": max_in_flight, "status_interval": status_interval,
                "max_queued": max_queued, "connect_timeout": connect_timeout,
                "pcap": pcap, "journal": journal, "ca_file": ca_file, "cert_file": cert_file,
                "key_file": key_file, "username": username, "password_file": password_file,
                "slots": slots, "stream_tokens": stream_tokens, "stream_ms": stream_ms}
        try:
            code = asyncio.run(_main(args))
        except LinkstackError as exc:
            # one line (no wrapping), the setting named by its option
            if isinstance(exc, ConfigError) and exc.key in _OPTION_OF_KEY:
                message = f"{_OPTION_OF_KEY[exc.key]}: {exc.reason}"
            else:
                message = str(exc)
            Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(message)}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            code = 130
        raise typer.Exit(code)
