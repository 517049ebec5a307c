"""CFDP uploads over the RF hop on real UDP sockets, in real time (linkstack.drivers.files).

In one process: the satellite (:class:`UdpSatellite` with its file service) and the ground's
:class:`UdpFileSender`, directly and through a lossy channel; then as real OS processes:
``linkstack serve --role satellite`` and ``linkstack upload FILE --peer``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkstack.cfdp.filestore import MemoryFilestore
from linkstack.cfdp.models import ModelInfo, ModelRegistry
from linkstack.cli.main import app
from linkstack.drivers.channel_proxy import ChannelProfile, ChannelProxy
from linkstack.drivers.files import OnboardFiles, UdpFileSender
from linkstack.drivers.udp import PacedBackend, UdpSatellite, rf_hop_config
from linkstack.hops.rf import RfHopConfig
from linkstack.payload.backend import FinishReason, Generation, RecordedBackend
from linkstack.payload.swap import SwappableBackend
from linkstack.sims.channel import FixedDelay
from linkstack.sims.scenario import load_scenario

LOOPBACK = ("127.0.0.1", 0)


def recorded(model_id: str = "factory") -> RecordedBackend:
    return RecordedBackend(
        {}, default=Generation("ok", 5, 1, 0.0, FinishReason.STOP), model_ids=(model_id,)
    )


def onboard(
    hop: RfHopConfig, *, capacity: int | None = None, loader_fails: bool = False
) -> tuple[OnboardFiles, SwappableBackend]:
    def load(info: ModelInfo, data: bytes) -> RecordedBackend:
        if loader_fails:
            raise ValueError("not a GGUF file")
        return recorded(info.model_id)

    backend = SwappableBackend(PacedBackend(recorded()), loader=load)
    registry = ModelRegistry(ModelInfo("factory", "", 0, "factory", 1), on_swap=backend.install)
    files = OnboardFiles(
        hop, registry=registry, store=MemoryFilestore(capacity=capacity), timer_s=1.0
    )
    return files, backend


async def _pair(
    hop: RfHopConfig,
    files: OnboardFiles,
    backend: SwappableBackend,
    *,
    channel: ChannelProxy | None = None,
) -> tuple[UdpFileSender, UdpSatellite]:
    sat = UdpSatellite(backend, hop, files=files)
    ground = UdpFileSender(hop, timer_s=1.0)
    if channel is None:
        s_addr = await sat.start(LOOPBACK, ("127.0.0.1", 9))
        g_addr = await ground.start(LOOPBACK, s_addr)
        sat.link.peer = g_addr
    else:
        await channel.start(LOOPBACK, LOOPBACK)
        g_addr = await ground.start(LOOPBACK, channel.addresses["ground"])
        s_addr = await sat.start(LOOPBACK, channel.addresses["space"])
        channel.peers = {"ground": g_addr, "space": s_addr}
    return ground, sat


async def _settle(files: OnboardFiles, count: int) -> None:
    for _ in range(500):
        if len(files.installs) >= count:
            return
        await asyncio.sleep(0.01)


def test_a_model_uploaded_over_udp_through_a_lossy_channel_is_swapped_in() -> None:
    """30 % of the uplink units and 20 % of the downlink units lost: COP-1 recovers the
    uplink, CFDP class 2 the downlink's ACK and Finished PDUs; the model is stored whole,
    verified and swapped in, and the endpoint answers with it."""
    hop = RfHopConfig(uplink_code="tc-bch", t1=0.25, transmission_limit=20, clcw_interval=0.1)
    data = random.Random(4).randbytes(40_000)
    files, backend = onboard(hop)
    channel = ChannelProxy(
        ChannelProfile("uplink", rate_bps=2_000_000, propagation=FixedDelay(0.005), erasure=0.3),
        ChannelProfile("downlink", rate_bps=2_000_000, propagation=FixedDelay(0.005), erasure=0.2),
        seed=5,
    )

    async def main() -> dict:
        ground, sat = await _pair(hop, files, backend, channel=channel)
        try:
            report = await asyncio.wait_for(
                ground.upload(data, "models/new.gguf", kind="model", timeout_s=60), 90
            )
            await _settle(files, 1)
            lost = channel.status()
            assert lost["uplink"]["lost"].get("erasure", 0) > 0
            assert lost["downlink"]["lost"].get("erasure", 0) > 0
            return report
        finally:
            await ground.aclose()
            await sat.aclose()
            channel.close()

    report = asyncio.run(main())
    assert report["status"] == "ok", report
    assert files.store.get("models/new.gguf") == data
    (result,) = files.installs
    assert result.swapped and backend.model_ids == ("new@v2",)
    assert files.status()["model"] == "new@v2"
    for key in (
        "status",
        "total_s",
        "bound_s",
        "ratio",
        "retransmitted_octets",
        "passes",
        "sha256",
    ):
        assert key in report


@pytest.mark.parametrize(
    ("capacity", "loader_fails", "status", "reason"),
    [
        (10_000, False, "filestore_rejection", "nothing stored"),
        (None, True, "ok", "test load failed: ValueError: not a GGUF file"),
    ],
)
def test_refused_uploads_over_udp_keep_the_old_model(
    capacity: int | None, loader_fails: bool, status: str, reason: str
) -> None:
    hop = rf_hop_config(load_scenario("default")).config
    data = random.Random(2).randbytes(20_000)
    files, backend = onboard(hop, capacity=capacity, loader_fails=loader_fails)

    async def main() -> dict:
        ground, sat = await _pair(hop, files, backend)
        try:
            report = await asyncio.wait_for(
                ground.upload(data, "models/new.gguf", kind="model", timeout_s=30), 60
            )
            await _settle(files, 1)
            return report
        finally:
            await ground.aclose()
            await sat.aclose()

    report = asyncio.run(main())
    assert report["status"] == status, report
    assert backend.model_ids == ("factory",)
    (result,) = files.installs
    assert not result.swapped and result.reason == reason
    assert files.store.names() == ([] if capacity else ["models/new.gguf"])


# -- as real processes -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_satellite_accepts_an_upload_from_the_upload_command(tmp_path: Path) -> None:
    rec = tmp_path / "rec.json"
    rec.write_text(recorded().to_json())
    sat_port, ground_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "linkstack.cli.serve",
            "serve",
            "--role",
            "satellite",
            "--listen",
            f"127.0.0.1:{sat_port}",
            "--peer",
            f"127.0.0.1:{ground_port}",
            "--backend",
            f"recorded:{rec}",
            "--models",
            str(tmp_path / "models"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening" in line, line
        f = tmp_path / "notes.txt"
        f.write_bytes(b"telemetry " * 3000)
        t0 = time.monotonic()
        result = CliRunner().invoke(
            app,
            [
                "upload",
                str(f),
                "--peer",
                f"127.0.0.1:{sat_port}",
                "--listen",
                f"127.0.0.1:{ground_port}",
                "--json",
                "--timeout",
                "60",
            ],
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["status"] == "ok" and report["octets"] == 30_000
        assert report["file"] == "uploads/notes.txt" and report["real_time"] is True
        assert time.monotonic() - t0 < 60
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    status = json.loads(err.strip().splitlines()[-1].split(": ", 1)[1])
    assert status["files"]["files"] == ["uploads/notes.txt"]
    assert status["files"]["received"] == 1


def test_upload_peer_bad_input_is_one_line_naming_the_option(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 10)
    for args, key in (
        (["--peer", "host:port"], "--peer"),
        (["--peer", "127.0.0.1:9", "--listen", "x:y"], "--listen"),
        (["--peer", "127.0.0.1:9", "--store-capacity", "5"], "--store-capacity"),
    ):
        result = CliRunner().invoke(app, ["upload", str(f), *args])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and key in lines[0], result.stderr
