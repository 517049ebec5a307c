"""``linkstack arq``: run COP-1 or selective repeat over a simulated link and measure it.

The run is :func:`linkstack.sims.arq_loopback.run_loopback`: both directions are
:class:`linkstack.sims.link.Direction` simulators in the virtual time of
:mod:`linkstack.sims.engine`, seeded with ``--seed`` (same seed, same output).

Example::

    linkstack arq --protocol sr --packets 2000 --loss 0.05 --delay 0.02 --rate 1e6 --seed 1

prints delivered, duplicated, out-of-order and lost packets, retransmissions, goodput and the
latency percentiles; ``--json`` prints the full :class:`linkstack.sims.arq_loopback.LoopbackResult`.
"""

from __future__ import annotations

import enum
import json
import math
from typing import Annotated, Any

import typer

from linkstack.errors import ConfigError
from linkstack.sims.arq_loopback import ChannelModel, LoopbackConfig, LoopbackResult, run_loopback


class Protocol(enum.StrEnum):
    cop1 = "cop1"
    sr = "sr"


def _clean(value: Any) -> Any:
    """JSON has no NaN: latency percentiles of a run that delivered nothing become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def format_result(r: LoopbackResult) -> str:
    """The human-readable report of one run."""
    alerts = ", ".join(f"{code} x{n}" for code, n in sorted(r.alerts.items())) or "none"
    lines = [
        f"protocol         {r.protocol} (window {r.window}, max outstanding "
        f"{r.max_outstanding}"
        + (f", transmission limit {r.tx_limit}" if r.tx_limit is not None else "")
        + f", {'T1' if r.protocol == 'cop1' else 'initial RTO'} {r.timeout * 1e3:.1f} ms)",
        f"packets          {r.packets} offered, {r.delivered} delivered, {r.duplicated} "
        f"duplicated, {r.out_of_order} out of order, {r.lost} lost",
        f"frames           {r.frames_sent} sent, {r.retransmissions} retransmissions, "
        f"{r.sender.timeouts} timeouts",
        f"goodput          {r.goodput_bps / 1e3:.1f} kbit/s over {r.duration:.3f} s",
        f"latency          p50 {r.latency_p50 * 1e3:.1f} ms   p95 {r.latency_p95 * 1e3:.1f} ms"
        f"   p99 {r.latency_p99 * 1e3:.1f} ms",
        f"alerts           {alerts} ({r.recoveries} recoveries)",
        f"channel          forward {r.forward_link.frames} frames ({r.forward_link.lost} lost, "
        f"{r.forward_link.duplicated} duplicated, {r.forward_link.reordered} reordered); "
        f"return {r.return_link.frames} frames ({r.return_link.lost} lost)",
    ]
    if not r.complete:
        lines.append(incomplete_line(r))
    return "\n".join(lines)


def incomplete_line(r: LoopbackResult) -> str:
    """The word for a run stopped by the virtual-time limit before the end of the transfer."""
    return (f"incomplete       stopped at the virtual-time limit (--max-time {r.max_time:g} s): "
            f"{r.delivered} of {r.packets} packets delivered, {r.packets - r.delivered} not; "
            "raise --max-time")


def register(app: typer.Typer) -> None:
    """Add the ``arq`` command to the linkstack CLI."""

    @app.command("arq")
    def arq(
        protocol: Annotated[Protocol, typer.Option(help="cop1 or sr.")] = Protocol.cop1,
        packets: Annotated[int, typer.Option(help="Packets to transfer.")] = 1000,
        loss: Annotated[float, typer.Option(help="Frame loss probability, each way.")] = 0.0,
        dup: Annotated[float, typer.Option(help="Frame duplication probability.")] = 0.0,
        reorder: Annotated[float, typer.Option(help="Frame reordering probability.")] = 0.0,
        delay: Annotated[float, typer.Option(help="One-way delay, seconds.")] = 0.02,
        seed: Annotated[int, typer.Option(help="Simulation seed (>= 0).")] = 0,
        rate: Annotated[float | None, typer.Option(
            help="Link rate, bit/s (default: no limit).")] = None,
        tx_limit: Annotated[int | None, typer.Option(
            help="COP-1 Transmission_Limit (default: suited to the loss rate).")] = None,
        window: Annotated[int, typer.Option(
            help="COP-1 K (max 127) / selective-repeat window.")] = 64,
        size: Annotated[int, typer.Option(help="Payload octets per packet.")] = 256,
        interval: Annotated[float, typer.Option(
            help="Seconds between offered packets (0: bulk).")] = 0.0,
        return_loss: Annotated[float | None, typer.Option(
            help="Loss on the return link (default: --loss).")] = None,
        fec: Annotated[bool, typer.Option(
            help="Selective repeat: the link has FEC (probe on timeout).")] = False,
        max_time: Annotated[float, typer.Option(help="Virtual-time limit, s.")] = 3600.0,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Loopback test of an ARQ: COP-1 (FOP-1/FARM-1) or selective repeat."""
        try:
            forward = ChannelModel(loss=loss, dup=dup, reorder=reorder, delay=delay, rate=rate)
            reverse = None
            if return_loss is not None:
                try:
                    reverse = ChannelModel(loss=return_loss, dup=dup, reorder=reorder,
                                           delay=delay, rate=rate)
                except ConfigError as exc:  # the return link's own loss, not --loss
                    key = "return_loss" if exc.key == "loss" else exc.key
                    raise ConfigError(exc.reason, key=key) from None
            cfg = LoopbackConfig(protocol=protocol.value, packets=packets, size=size,
                                 forward=forward, reverse=reverse, seed=seed, window=window,
                                 tx_limit=tx_limit, interval=interval, fec=fec,
                                 max_time=max_time)
            # the engines check their own settings (e.g. the SR window) when they are made
            result = run_loopback(cfg)
        except ConfigError as exc:
            raise typer.BadParameter(
                exc.reason, param_hint=f"--{exc.key.replace('_', '-')}") from exc
        if as_json:
            typer.echo(json.dumps(_clean(result.as_dict()), indent=2, sort_keys=True))
        else:
            typer.echo(format_result(result))
        if not result.complete:  # the transfer did not finish: the work ran and failed
            if as_json:
                typer.echo(incomplete_line(result), err=True)
            raise typer.Exit(1)
