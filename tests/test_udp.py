"""The RF hop over real UDP sockets on 127.0.0.1: ground and satellite as asyncio tasks in one
process, through the real-time channel process, and as three real OS processes (satellite,
channel, ground) started with ``python -m linkstack.cli.serve``."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scapy.utils import rdpcap
from typer.testing import CliRunner

from linkstack.capture.pcap import node_addresses, read_pcap
from linkstack.capture.scapy_layers import CLCW, SPP, TCFrame, TMFrame, managed_parameters
from linkstack.drivers.channel_proxy import ChannelDirection, ChannelProfile, ChannelProxy
from linkstack.drivers.service import ServiceResult
from linkstack.drivers.udp import (
    PacedBackend,
    UdpGroundService,
    UdpSatellite,
    parse_address,
    rf_hop_config,
    transport_for,
)
from linkstack.errors import ConfigError
from linkstack.frames.tm import TmChannelConfig
from linkstack.hops.rf import RfHopConfig
from linkstack.payload.backend import FinishReason, Generation, RecordedBackend
from linkstack.payload.transport import PROMPT_APID, RESULT_APID
from linkstack.sims.channel import FixedDelay
from linkstack.sims.scenario import load_scenario

ANSWERS = {
    "What is the capital of France?": ("Paris is the capital of France.", 69, 8, 0.05),
    "Name a planet.": ("Mars.", 60, 3, 0.02),
    "Say hello.": ("Hello.", 58, 3, 0.01),
}


def recorded() -> RecordedBackend:
    return RecordedBackend({p: Generation(a, pt, ct, s, FinishReason.STOP)
                            for p, (a, pt, ct, s) in ANSWERS.items()})


LOOPBACK = ("127.0.0.1", 0)


def check(result: ServiceResult, prompt: str) -> None:
    text, prompt_tokens, completion_tokens, inference_s = ANSWERS[prompt]
    assert (result.status, result.text) == ("ok", text)
    assert (result.info["prompt_tokens"], result.info["completion_tokens"]) == (
        prompt_tokens, completion_tokens)
    # the satellite reports the recorded inference time, and the paced replay really took it
    assert result.breakdown["onboard.inference"] == pytest.approx(inference_s, abs=1e-6)
    assert result.breakdown["link.round_trip"] >= 0
    assert math.isclose(sum(result.breakdown.values()), result.total_s, abs_tol=1e-9)


# -- addresses -----------------------------------------------------------------------------------

def test_parse_address() -> None:
    assert parse_address("10.1.2.3:7001") == ("10.1.2.3", 7001)
    assert parse_address(":7001") == ("127.0.0.1", 7001)
    assert parse_address("7001") == ("127.0.0.1", 7001)
    assert parse_address("[::1]:9") == ("::1", 9)
    for bad in ("host:port", "1.2.3.4:70000"):
        with pytest.raises(ConfigError):
            parse_address(bad)


def test_node_addresses_follow_the_scenario() -> None:
    sc = load_scenario("default")
    assert node_addresses(sc.nodes) == {"ground": "10.0.0.1", "relay": "10.0.0.2",
                                        "sat1": "10.0.0.3"}


# -- the channel, sans-IO ------------------------------------------------------------------------

def test_channel_timing_is_the_simulator_law() -> None:
    # 8000 bit/s: a 100-octet unit takes 0.1 s to clock out; 0.25 s propagation
    d = ChannelDirection(ChannelProfile("x", rate_bps=8000, propagation=FixedDelay(0.25)),
                         start=10.0)
    t = [d.transmit(bytes(100), 10.0) for _ in range(3)]
    assert [x.deliver_at for x in t] == pytest.approx([10.35, 10.45, 10.55])
    assert [x.queueing_s for x in t] == pytest.approx([0.0, 0.1, 0.2])
    assert all(x.serialization_s == pytest.approx(0.1) for x in t)
    # an idle transmitter starts at once
    late = d.transmit(bytes(50), 20.0)
    assert late.deliver_at == pytest.approx(20.0 + 0.05 + 0.25)
    assert late.data == bytes(50) and late.lost is None


def test_channel_queue_capacity_drops() -> None:
    d = ChannelDirection(ChannelProfile("x", rate_bps=800, queue_capacity=2))
    fates = [d.transmit(bytes(10), 0.0).lost for _ in range(5)]
    # the first goes on the air, two wait, the rest find the queue full
    assert fates == [None, None, None, "queue_full", "queue_full"]
    assert d.lost == {"queue_full": 2}
    # once the first two have left, there is room again
    assert d.transmit(bytes(10), 0.25).lost is None


def test_channel_erasures_and_bit_errors_are_seeded() -> None:
    profile = ChannelProfile("x", ber=1e-3, erasure=0.1)
    runs = []
    for _ in range(2):
        d = ChannelDirection(profile, seed=42)
        runs.append([d.transmit(bytes(200), float(i)) for i in range(2000)])
    assert [(x.lost, x.data) for x in runs[0]] == [(x.lost, x.data) for x in runs[1]]
    lost = sum(x.lost == "erasure" for x in runs[0])
    assert abs(lost - 200) < 4 * math.sqrt(2000 * 0.1 * 0.9)
    delivered = [x for x in runs[0] if x.data is not None]
    flipped = sum(int(np.unpackbits(np.frombuffer(x.data, np.uint8)).sum())
                  for x in delivered if x.data)
    assert flipped == sum(x.bit_errors for x in delivered)  # zeros in, so ones = errors
    n = 1600 * len(delivered)
    assert abs(flipped - n * 1e-3) < 4 * math.sqrt(n * 1e-3)


def test_channel_gilbert_elliott_bursts_match_the_model() -> None:
    """The proxy flips bits with the simulator's Gilbert-Elliott process: with BER 1 in the
    bad state and 0 in the good one, runs of flipped bits are the bad sojourns (mean 20)."""
    from linkstack.sims.channel import GilbertElliott

    ge = GilbertElliott(1 / 500, 1 / 20, ber_good=0.0, ber_bad=1.0)
    d = ChannelDirection(ChannelProfile("x", rate_bps=1e6, ge=ge), seed=3)
    units = [d.transmit(bytes(125), 0.0) for _ in range(2000)]  # back to back on the bit clock
    bits = np.concatenate([np.unpackbits(np.frombuffer(u.data or b"", np.uint8)) for u in units])
    edges = np.flatnonzero(np.diff(np.concatenate(([0], bits, [0])).astype(np.int8)))
    runs = (edges[1::2] - edges[0::2])[1:-1]  # bursts not touching either end
    assert len(runs) > 1000
    sd = math.sqrt(1 - 1 / 20) * 20
    assert abs(runs.mean() - 20) <= 3.3 * sd / math.sqrt(len(runs))
    assert d.bit_errors == int(bits.sum()) == sum(u.bit_errors for u in units)


def test_channel_reorders_and_duplicates() -> None:
    from linkstack.sims.channel import Reorder

    profile = ChannelProfile("x", rate_bps=80_000, propagation=FixedDelay(0.01),
                             reorder=Reorder(0.3, 0.05), duplicate=0.25, duplicate_delay_s=0.02,
                             erasure=0.1)
    runs = []
    for _ in range(2):
        d = ChannelDirection(profile, seed=9)
        runs.append([d.transmit(bytes(100), 0.01 * i) for i in range(4000)])
    assert runs[0] == runs[1]  # seeded
    t = runs[0]
    delivered = [x for x in t if x.data is not None]
    held = [x for x in delivered if x.reorder_s > 0]
    copies = [x for x in delivered if x.copy_at is not None]
    for count, n, p in ((len(held), len(delivered), 0.3), (len(copies), len(delivered), 0.25)):
        assert abs(count - n * p) <= 3.3 * math.sqrt(n * p * (1 - p))
    assert all(x.copy_at is None for x in t if x.data is None)  # a lost unit has no copy
    for i, x in enumerate(t):  # handed over at 10 ms steps: 10 ms serialization, no queue
        if x.data is not None:
            assert (x.queueing_s, x.propagation_s) == (pytest.approx(0.0, abs=1e-9), 0.01)
            assert x.serialization_s == pytest.approx(0.01)
            assert x.deliver_at == pytest.approx(0.01 * i + 0.02 + x.reorder_s)
    mean_hold = sum(x.reorder_s for x in held) / len(held)
    assert abs(mean_hold - 0.05) <= 3.3 * 0.05 / math.sqrt(len(held))
    lags = [x.copy_at - x.deliver_at for x in copies]  # type: ignore[operator]
    assert min(lags) >= 0.01
    assert abs(sum(lags) / len(lags) - 0.03) <= 3.3 * 0.02 / math.sqrt(len(lags))


def test_channel_profile_from_the_scenario() -> None:
    path = rf_hop_config(load_scenario("default"))
    up = ChannelProfile.from_link(path.hop.forward)
    assert (up.rate_bps, up.ber, up.erasure) == (64000.0, 1e-6, 0.0)
    # the pass geometry: 2155 km / 7.19 ms at the 10 degree mask, at AOS (scenario comment)
    assert up.propagation.delay_ns(0) / 1e9 == pytest.approx(7.19e-3, abs=0.01e-3)
    down = ChannelProfile.from_link(path.hop.back)
    assert down.ge is not None and down.ge.ber_bad == 0.5  # the X-band bursts of the profile
    dup = load_scenario("default", ["links.uplink.duplicate.fraction=0.2",
                                    "links.uplink.reorder.fraction=0.1",
                                    "links.uplink.reorder.mean_delay_s=0.5"])
    up_dup = ChannelProfile.from_link(rf_hop_config(dup).hop.forward)
    assert up_dup.duplicate == 0.2 and up_dup.reorder is not None
    assert up_dup.reorder.mean_delay_s == 0.5
    fixed = ChannelProfile.from_link(path.hop.back, overrides={"delay_s": 0.1, "erasure": 0.5})
    assert fixed.propagation.delay_ns(123) == 100_000_000 and fixed.erasure == 0.5
    with pytest.raises(ConfigError):
        ChannelProfile.from_link(path.hop.back, overrides={"jitter": 1})


# -- both ends in one process -------------------------------------------------------------------

async def _pair(hop: RfHopConfig, *, channel: ChannelProxy | None = None,
                timeout_s: float = 900.0) -> tuple[UdpGroundService, UdpSatellite]:
    sat = UdpSatellite(PacedBackend(recorded()), hop)
    ground = UdpGroundService(hop, timeout_s=timeout_s)
    if channel is None:
        s_addr = await sat.start(LOOPBACK, ("127.0.0.1", 9))  # peer set below
        g_addr = await ground.start(LOOPBACK, s_addr)
        sat.link.peer = g_addr
    else:
        await channel.start(LOOPBACK, LOOPBACK)
        g_addr = await ground.start(LOOPBACK, channel.addresses["ground"])
        s_addr = await sat.start(LOOPBACK, channel.addresses["space"])
        channel.peers = {"ground": g_addr, "space": s_addr}
    return ground, sat


def test_ground_and_satellite_over_loopback() -> None:
    hop = rf_hop_config(load_scenario("default")).config

    async def main() -> None:
        ground, sat = await _pair(hop)
        try:
            prompts = list(ANSWERS)
            for p in prompts:
                check(await asyncio.wait_for(ground.ask(p, p, 16), 30), p)
            status = ground.status()
            link = status["link"]
            assert isinstance(link, dict)
            assert link["cop1_state"] == "S1" and link["vs"] == len(prompts)
            assert link["counters"]["retransmissions"] == 0
            space = sat.status()["link"]
            assert isinstance(space, dict) and space["vr"] == len(prompts)
        finally:
            await ground.aclose()
            await sat.aclose()

    asyncio.run(main())


def test_through_a_lossy_uplink_cop1_recovers_everything() -> None:
    hop = RfHopConfig(uplink_code="tc-bch", t1=0.25, transmission_limit=10, clcw_interval=0.1)
    channel = ChannelProxy(
        ChannelProfile("uplink", rate_bps=256_000, propagation=FixedDelay(0.005), erasure=0.3),
        ChannelProfile("downlink", rate_bps=2_000_000, propagation=FixedDelay(0.005)), seed=7)

    async def main() -> None:
        ground, sat = await _pair(hop, channel=channel)
        try:
            prompts = list(ANSWERS) * 2
            results = await asyncio.wait_for(asyncio.gather(
                *(ground.ask(str(i), p, 16) for i, p in enumerate(prompts))), 60)
            for r, p in zip(results, prompts, strict=True):
                check(r, p)
                assert r.breakdown["link.round_trip"] >= 2 * 0.005  # the propagation, both ways
            lost = channel.status()["uplink"]["lost"]
            assert lost.get("erasure", 0) > 0
            link = ground.status()["link"]
            assert isinstance(link, dict)
            assert link["counters"]["retransmissions"] > 0  # FOP-1 resent the lost frames
            assert sat.runner.generations == len(prompts)  # FARM-1: nothing delivered twice
        finally:
            await ground.aclose()
            await sat.aclose()
            channel.close()

    asyncio.run(main())


def test_over_real_sockets_duplicated_frames_change_nothing_above_the_frames() -> None:
    """A channel that delivers 40 % of the units twice, both ways, with the uplink in USLP
    frames and the CLCW coming down in USLP frames: FARM-1 and the downlink
    demultiplexer drop the copies; every prompt runs once and gets its answer."""
    hop = RfHopConfig(uplink_code="tc-bch", t1=0.25, transmission_limit=10, clcw_interval=0.1,
                      uplink_frame="uslp", downlink_frame="uslp")
    channel = ChannelProxy(
        ChannelProfile("uplink", rate_bps=256_000, propagation=FixedDelay(0.005),
                       duplicate=0.4),
        ChannelProfile("downlink", rate_bps=2_000_000, propagation=FixedDelay(0.005),
                       duplicate=0.4), seed=11)

    async def main() -> None:
        ground, sat = await _pair(hop, channel=channel)
        try:
            prompts = list(ANSWERS) * 2
            results = []
            for first in (0, 3):  # three at a time: within the endpoint's queue limit
                results += await asyncio.wait_for(asyncio.gather(
                    *(ground.ask(str(first + i), p, 16)
                      for i, p in enumerate(prompts[first : first + 3]))), 60)
            for r, p in zip(results, prompts, strict=True):
                check(r, p)
            status = channel.status()
            assert status["uplink"]["duplicates"] > 0 and status["downlink"]["duplicates"] > 0
            link = ground.status()["link"]
            assert isinstance(link, dict) and link["frames_duplicate"] > 0
            assert sat.runner.generations == len(prompts)  # nothing ran twice
        finally:
            await ground.aclose()
            await sat.aclose()
            channel.close()

    asyncio.run(main())


def test_a_dead_downlink_times_out() -> None:
    """The TM downlink has no ARQ (only COP-1 protects the uplink): when it carries nothing,
    the ground's client reports ``timeout`` instead of waiting for ever."""
    hop = RfHopConfig(uplink_code="tc-bch", t1=0.25, transmission_limit=100)
    channel = ChannelProxy(ChannelProfile("uplink"), ChannelProfile("downlink", erasure=1.0))

    async def main() -> None:
        ground, sat = await _pair(hop, channel=channel, timeout_s=0.8)
        try:
            r = await asyncio.wait_for(ground.ask("x", "Say hello.", 16), 30)
            assert r.status == "timeout"
            assert r.total_s >= 0.8 and r.breakdown == {"link.round_trip": r.total_s}
            assert sat.runner.generations == 1  # the prompt got there; the answer did not
        finally:
            await ground.aclose()
            await sat.aclose()
            channel.close()

    asyncio.run(main())


# -- three OS processes --------------------------------------------------------------------------

def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def serve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "linkstack.cli.serve", *args]


def wait_line(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if needle in line:
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no {needle!r} from {proc.args}")


def test_three_processes_ground_channel_satellite(tmp_path: Path) -> None:
    rec = tmp_path / "rec.json"
    rec.write_text(recorded().to_json())
    sat_port, ground_port, side_g, side_s = free_ports(4)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    sat = subprocess.Popen(
        serve_cmd("serve", "--role", "satellite", "--listen", f"127.0.0.1:{sat_port}",
                  "--peer", f"127.0.0.1:{side_s}", "--backend", f"recorded:{rec}",
                  "--pcap", str(tmp_path / "sat.pcap")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    chan = subprocess.Popen(
        serve_cmd("channel", "--ground-side", f"127.0.0.1:{side_g}",
                  "--space-side", f"127.0.0.1:{side_s}", "--ground", f"127.0.0.1:{ground_port}",
                  "--satellite", f"127.0.0.1:{sat_port}", "--delay", "0.01", "--rate", "100000",
                  "--status-interval", "60"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_line(sat, "listening on")
        wait_line(chan, "channel:")
        prompts = list(ANSWERS)
        args = [x for p in prompts for x in ("--prompt", p)]
        ground = subprocess.run(
            serve_cmd("serve", "--role", "ground", "--listen", f"127.0.0.1:{ground_port}",
                      "--peer", f"127.0.0.1:{side_g}", "--json", "--max-tokens", "16",
                      "--pcap", str(tmp_path / "ground.pcap"), *args),
            capture_output=True, text=True, timeout=90, env=env)
        assert ground.returncode == 0, ground.stderr
        lines = [json.loads(x) for x in ground.stdout.splitlines()]
        answers = lines[:-1]
        assert [a["prompt"] for a in answers] == prompts
        for a, p in zip(answers, prompts, strict=True):
            assert (a["status"], a["text"]) == ("ok", ANSWERS[p][0])
            assert a["breakdown"]["link.round_trip"] >= 2 * 0.01
        assert lines[-1]["status"]["link"]["cop1_state"] == "S1"
    finally:
        for proc in (sat, chan):
            proc.send_signal(signal.SIGTERM)
        outs = [proc.communicate(timeout=30) for proc in (sat, chan)]
    assert sat.returncode == 0 and chan.returncode == 0, outs
    channel_status = json.loads(outs[1][0].strip().splitlines()[-1])
    assert channel_status["uplink"]["delivered"] >= len(ANSWERS)

    # -- the captures: what each process sent, decoded by the scapy layers --------------------
    path = rf_hop_config(load_scenario("default"))
    ground_records = list(read_pcap(tmp_path / "ground.pcap"))
    assert {r.src for r in ground_records} == {"10.0.0.1"}  # ground, scenario addresses
    assert {r.dst for r in ground_records} == {"10.0.0.3"}  # sat1
    with managed_parameters(TmChannelConfig(frame_length=1115)):
        g = rdpcap(str(tmp_path / "ground.pcap"))
        s = rdpcap(str(tmp_path / "sat.pcap"))
    prompts_sent = [p[SPP] for p in g if SPP in p]
    assert len(prompts_sent) == len(ANSWERS)
    assert {p.apid for p in prompts_sent} == {PROMPT_APID}
    tc = [p[TCFrame] for p in g if TCFrame in p]
    assert [f.frame_sequence_number for f in tc] == list(range(len(ANSWERS)))  # no loss
    assert {(f.scid, f.vcid, f.bypass_flag) for f in tc} == {(path.config.scid, 0, 0)}
    results_sent = [p[SPP] for p in s if SPP in p]
    assert {p.apid for p in results_sent} == {RESULT_APID}
    tm = [p for p in s if TMFrame in p]
    assert tm and all(CLCW in p for p in tm)
    # the last CLCW reports V(R) = all three AD frames received
    assert tm[-1][CLCW].report_value == len(ANSWERS)
    times = [float(p.time) for p in g]
    assert times == sorted(times) and abs(times[0] - time.time()) < 300  # wall clock


# -- the CLI -------------------------------------------------------------------------------------

def test_cli_registration_and_errors() -> None:
    import typer

    from linkstack.cli import serve

    app = typer.Typer()
    serve.register(app)

    @app.callback()
    def _root() -> None:
        """(so that the commands keep their names)"""

    runner = CliRunner()
    assert runner.invoke(app, ["serve", "--help"]).exit_code == 0
    assert runner.invoke(app, ["channel", "--help"]).exit_code == 0
    bad = runner.invoke(app, ["serve", "--role", "relay", "--listen", ":0", "--peer", ":1"])
    assert bad.exit_code != 0
    bad = runner.invoke(app, ["serve", "--role", "ground", "--listen", "x:y", "--peer", ":1",
                              "--prompt", "hi"])
    assert bad.exit_code == 2


def test_transport_fits_one_tc_frame() -> None:
    hop = RfHopConfig()
    t = transport_for(hop)
    assert t.max_data_length + 6 <= hop.max_packet_length
    assert t.max_data_length <= 1024


def test_garbage_datagrams_do_not_break_the_link() -> None:
    """Random datagrams (a port scanner, a misconfigured peer) reach both sockets; the link
    keeps working and answers the next prompt."""
    hop = RfHopConfig()
    rng = np.random.default_rng(5)

    async def main() -> None:
        ground, sat = await _pair(hop)
        try:
            noise = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for i in range(300):
                n = int(rng.integers(0, 1400))
                data = rng.bytes(n)
                if i % 3 == 0 and n > 8:  # make some look like a CADU / CLTU start
                    data = (bytes.fromhex("1acffc1d") if i % 2 else bytes.fromhex("eb90")) \
                        + data
                assert ground.link.address is not None and sat.link.address is not None
                noise.sendto(data, ground.link.address if i % 2 else sat.link.address)
            noise.close()
            await asyncio.sleep(0.2)
            check(await asyncio.wait_for(ground.ask("1", "Say hello.", 16), 30), "Say hello.")
        finally:
            await ground.aclose()
            await sat.aclose()

    asyncio.run(main())


def test_streamed_partials_cross_the_rf_hop_in_real_time() -> None:
    """The satellite streams (every 2 tokens) a paced replay whose tokens come 0.1 s apart;
    the ground hears the first words over the COP-1 / TM hop well before the Result."""
    from linkstack.drivers.service import PartialUpdate
    from linkstack.drivers.udp import transport_for
    from linkstack.payload.endpoint import EndpointConfig

    hop = rf_hop_config(load_scenario("default")).config
    answer = "Paris is the capital of France."
    pieces = tuple((0.1 * (i + 1), i + 1, k) for i, k in enumerate((5, 8, 12, 20, 23, 30, 31)))
    backend = RecordedBackend({"q": Generation(answer, 9, 7, 0.75, FinishReason.STOP, pieces)})

    async def main() -> None:
        sat = UdpSatellite(PacedBackend(backend), hop, endpoint_config=EndpointConfig(
            transport=transport_for(hop), stream_tokens=2))
        ground = UdpGroundService(hop)
        s_addr = await sat.start(LOOPBACK, ("127.0.0.1", 9))
        sat.link.peer = await ground.start(LOOPBACK, s_addr)
        updates: list[PartialUpdate] = []
        try:
            result = await asyncio.wait_for(ground.ask("s", "q", 16, on_partial=updates.append),
                                            30)
        finally:
            await ground.aclose()
            await sat.aclose()
        assert result.status == "ok" and result.text == answer
        assert [u.segment for u in updates] == [0, 1, 2, 3]  # after tokens 1, 3, 5, 7
        assert "".join(u.text for u in updates) == updates[-1].so_far == answer
        assert updates[0].elapsed_s < result.total_s - 0.4  # first words ~0.6 s earlier
        assert ground.unmatched == 0

    asyncio.run(main())


# -- SDLS over UDP (the shipped `secure` scenario: AES-256-GCM on the RF hop both ways) -----------

def test_secure_scenario_over_loopback_authenticates_every_frame(tmp_path: Path) -> None:
    from linkstack.sims.topology import rf_end_sdls

    path = rf_hop_config(load_scenario("secure"))
    assert path.config.uplink_sdls_overhead and path.config.downlink_sdls_overhead

    async def main() -> None:
        sat = UdpSatellite(PacedBackend(recorded()), path.config,
                           sdls=rf_end_sdls(path.hop, "space", tmp_path))
        ground = UdpGroundService(path.config, timeout_s=30,
                                  sdls=rf_end_sdls(path.hop, "ground", tmp_path))
        s_addr = await sat.start(LOOPBACK, ("127.0.0.1", 9))
        g_addr = await ground.start(LOOPBACK, s_addr)
        sat.link.peer = g_addr
        try:
            for p in ANSWERS:
                check(await asyncio.wait_for(ground.ask(p, p, 16), 30), p)
            g, s = ground.status()["link"], sat.status()["link"]
            assert isinstance(g, dict) and isinstance(s, dict)
            assert g["sdls_applied"] >= len(ANSWERS) and s["sdls_accepted"] == g["sdls_applied"]
            assert s["sdls_applied"] > 0 and g["sdls_accepted"] > 0
            assert g["sdls_rejected"] == {} and s["sdls_rejected"] == {}
        finally:
            await ground.aclose()
            await sat.aclose()

    asyncio.run(main())
    # each end reserved the IVs of what it sends in its own state file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sdls-ground-spi2.json",
                                                          "sdls-space-spi1.json"]


def test_a_restarted_sender_never_reuses_an_iv(tmp_path: Path) -> None:
    """Two lives of the ground end on one state folder: the second's first IV is above every
    IV the first used (reserved in blocks before use), so a receiver that kept running takes
    its frames and AES-GCM never sees an IV twice under the key."""
    from linkstack.sims.topology import rf_end_sdls

    hop = rf_hop_config(load_scenario("secure")).hop
    ivs: list[list[int]] = []
    for _life in range(2):
        up, _down = rf_end_sdls(hop, "ground", tmp_path)
        assert up is not None
        sa = up.sadb[up.spi]
        used = []
        for _ in range(300):  # past one reservation block
            iv, _arsn = up.sadb.next_sequence(sa)
            used.append(iv)
        ivs.append(used)
    assert min(ivs[1]) > max(ivs[0])


def test_serve_with_sdls_needs_a_state_folder(tmp_path: Path) -> None:
    for role in ("ground", "satellite"):
        proc = subprocess.run(
            serve_cmd("serve", "--role", role, "--scenario", "secure", "--listen",
                      "127.0.0.1:0", "--peer", "127.0.0.1:9", "--prompt", "hi",
                      "--backend", "recorded:/nonexistent.json"),
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "--sdls-state" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        serve_cmd("serve", "--role", "ground", "--scenario", "secure", "--listen",
                  "127.0.0.1:0", "--peer", "127.0.0.1:9", "--prompt", "hi", "--sdls-state",
                  str(tmp_path / "missing")), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--sdls-state" in proc.stderr
    assert "is not a folder" in proc.stderr
