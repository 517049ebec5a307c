"""CFDP through the whole stack in virtual time (linkstack.sims.file_transfer).

Most tests use a fast uplink and small files; one crosses three (short) passes at the default
64 kbit/s.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from linkstack.cfdp.filestore import MemoryFilestore
from linkstack.cfdp.models import ModelInfo, ModelRegistry
from linkstack.sims.channel import FixedDelay, PeriodicWindows
from linkstack.sims.file_transfer import (
    contact_windows,
    file_bound,
    onboard_products,
    run_download,
    run_upload,
)
from linkstack.sims.scenario import load_scenario
from linkstack.sims.topology import plan_path

FAST = ["links.uplink.rate_bps=2e6"]


def payload(size: int, seed: int = 5) -> bytes:
    return random.Random(seed).randbytes(size)


def registry() -> ModelRegistry:
    return ModelRegistry(ModelInfo("old.gguf", "0" * 64, 1, "models/old.gguf", 1))


@pytest.mark.parametrize("cls", [1, 2])
def test_upload_is_byte_exact_on_a_clean_link(cls: int) -> None:
    data = payload(40_000)
    report = run_upload(load_scenario("default", FAST), data, "uploads/x.bin",
                        transfer_class=cls)
    assert report.status == "ok"
    assert report.sha256 == hashlib.sha256(data).hexdigest() == report.source_sha256
    assert report.stored_octets == len(data)
    assert 0 < report.bound_s <= report.total_s
    assert report.ratio < 3
    assert report.passes == 1
    assert report.retransmitted["cfdp_file_data"] == 0
    assert report.cfdp["max_pdu_length"] + 6 <= 1024


def test_class2_upload_completes_on_a_lossy_uplink() -> None:
    data = payload(30_000, seed=2)
    report = run_upload(load_scenario("default", [*FAST, "links.uplink.erasure=0.1"]), data,
                        "uploads/x.bin", transfer_class=2)
    assert report.status == "ok"
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.retransmitted_octets > 0
    assert report.retransmitted["arq_frames.uplink"] > 0  # COP-1 resent the lost frames


def test_class2_upload_survives_lost_acks_and_finished_on_the_downlink() -> None:
    data = payload(20_000, seed=3)
    report = run_upload(load_scenario("default", [*FAST, "links.downlink.erasure=0.5",
                                                  "scenario.seed=4"]), data, "uploads/x.bin",
                        transfer_class=2)
    assert report.status == "ok"
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.confirmed_s is not None  # the ground heard the Finished PDU in the end


def test_class2_download_recovers_downlink_losses_with_naks() -> None:
    onboard = MemoryFilestore({"logs/a.bin": payload(60_000, seed=9)})
    report, data = run_download(load_scenario("default", ["links.downlink.erasure=0.1"]),
                                "logs/a.bin", transfer_class=2, onboard=onboard)
    assert report.status == "ok"
    assert data == onboard.get("logs/a.bin")
    assert report.sha256 == report.source_sha256
    assert report.retransmitted["cfdp_file_data"] > 0
    assert report.cfdp["ground"]["counters"]["sent_nak"] > 0


def test_class1_download_on_a_clean_link() -> None:
    report, data = run_download(load_scenario("default"), "answers/long-answer.txt",
                                transfer_class=1)
    assert report.status == "ok"
    assert data == onboard_products().get("answers/long-answer.txt")


SHORT_PASSES = [
    f"links.{name}.outages.{key}={value}" for name in ("uplink", "downlink")
    for key, value in (("model", '"periodic"'), ("first_start_s", 0.0), ("period_s", 120.0),
                       ("duration_s", 30.0))]


def test_upload_spans_three_passes_and_resumes_after_each_gap() -> None:
    """30 s of contact every 120 s at 64 kbit/s, from 10 s into the first: 500 kB need
    62.5 s of contact for their octets alone, so the transfer runs over three passes,
    suspended in each gap, its timers intact."""
    data = payload(500_000, seed=11)
    reg = registry()
    report = run_upload(load_scenario("default", SHORT_PASSES), data, "models/new.gguf",
                        transfer_class=2, swap=True, registry=reg)
    assert report.status == "ok"
    assert report.passes >= 3
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.cfdp["ground"]["counters"]["suspensions"] >= 2
    assert report.cfdp["onboard"]["pdus_ignored"] == {}
    # the bound counts the gaps: two 90 s gaps and the octets at 64 kbit/s
    assert report.bound_s >= 2 * 90 + 500_000 * 8 / 64_000
    assert report.bound_s <= report.total_s < 2 * report.bound_s
    assert reg.active is not None and reg.active.sha256 == report.sha256
    assert report.model is not None and report.model["swapped"]


class FlakyMemory(MemoryFilestore):
    """Onboard storage that damages one write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write_data(self, file: Path, data: bytes, offset: int | None) -> None:
        self.writes += 1
        if self.writes == 10:
            data = b"\x00" + data[1:] if data[:1] != b"\x00" else b"\x01" + data[1:]
        super().write_data(file, data, offset)


def test_corrupted_model_upload_is_refused_and_the_old_model_stays() -> None:
    data = payload(30_000, seed=12)
    reg = registry()
    report = run_upload(load_scenario("default", FAST), data, "models/new.gguf",
                        transfer_class=2, swap=True, registry=reg, onboard=FlakyMemory())
    assert report.status == "file_checksum_failure"
    assert report.sha256 != report.source_sha256
    assert reg.active is not None and reg.active.name == "old.gguf"
    assert report.model is not None and not report.model["swapped"]


def test_model_whose_digest_differs_from_the_published_one_is_refused() -> None:
    data = payload(20_000, seed=13)
    reg = registry()
    report = run_upload(load_scenario("default", FAST), data, "models/new.gguf",
                        transfer_class=2, swap=True, registry=reg,
                        expected_sha256="ab" * 32)
    assert report.status == "sha256_mismatch"
    assert report.sha256 == report.source_sha256  # CFDP delivered it intact ...
    assert reg.active is not None and reg.active.name == "old.gguf"  # ... but not swapped


def test_upload_cut_short_is_truncated_and_not_swapped() -> None:
    data = payload(100_000, seed=14)
    reg = registry()
    report = run_upload(load_scenario("default"), data, "models/new.gguf", transfer_class=2,
                        swap=True, registry=reg, timeout_s=4.0)
    assert report.status.startswith("timeout")
    assert report.stored_octets < len(data)
    assert reg.active is not None and reg.active.name == "old.gguf"
    assert report.model is not None and not report.model["swapped"]


def test_unknown_satellite_and_class_are_config_errors() -> None:
    from linkstack.errors import ConfigError

    sc = load_scenario("default", FAST)
    with pytest.raises(ConfigError) as exc:
        run_upload(sc, b"x", "a", satellite="nope")
    assert exc.value.key == "--to"
    with pytest.raises(ConfigError) as exc:
        run_upload(sc, b"x", "a", transfer_class=3)
    assert exc.value.key == "--class"
    with pytest.raises(ConfigError) as exc:
        run_download(sc, "missing.txt")
    assert exc.value.key == "NAME"


class _Dir:
    def __init__(self, rate: float, delay: float, vis: object) -> None:
        self.rate_bps = rate
        self.propagation = FixedDelay(delay)
        self.visibility = vis


def test_bound_counts_contact_gaps_and_propagation() -> None:
    passes = PeriodicWindows(0.0, 100.0, 10.0)
    fast = PeriodicWindows(0.0, 1000.0, 1000.0)
    # 15 000 octets at 8 kbit/s: 15 s of contact -> 10 s in the first pass, 5 in the next
    one = file_bound([_Dir(8000.0, 0.01, passes)], 15_000, 0.0)
    assert one == pytest.approx(105.01, abs=1e-6)
    # a fast second hop adds its propagation and one piece's serialization at most
    two = file_bound([_Dir(8000.0, 0.01, passes), _Dir(1e9, 0.002, fast)], 15_000, 0.0)
    assert 105.012 <= two <= 105.012 + 8 * math.ceil(15_000 / 2048) / 1e9 + 1e-9
    assert file_bound([_Dir(8000.0, 0.0, passes)], 0, 0.0) == 0.0


def test_contact_windows_of_the_default_path() -> None:
    sc = load_scenario("default")
    windows = contact_windows(plan_path(sc, "sat1"), 0.0, 2.5 * 5900.0)
    assert len(windows) == 3
    (a0, b0), (a1, _b1) = windows[0], windows[1]
    assert a0 == 0.0 and 500 < b0 - a0 < 600  # ~9.2 min above the mask
    assert 5800 < a1 - a0 < 6100  # one orbit of a 700 km LEO


TSHARK = shutil.which("tshark")


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (Debian package tshark)")
def test_cfdp_pdus_in_the_capture_decode_with_wiresharks_cfdp_dissector(tmp_path: Path) -> None:
    """Each PDU an entity sends is written on UDP port 52008 (beside its Space Packet on
    52001); Wireshark's own CFDP dissector decodes every one (Metadata, file data, EOF, ACK,
    Finished, NAK) without a malformed-packet or other expert error."""
    from linkstack.capture.pcap import PORTS, read_pcap
    from linkstack.spp.packet import SpacePacket

    up = tmp_path / "up.pcap"
    down = tmp_path / "down.pcap"
    data = payload(6000, seed=8)
    report = run_upload(load_scenario("default", [*FAST, "links.uplink.erasure=0.1"]), data,
                        "uploads/x.bin", pcap=up)
    assert report.status == "ok"
    onboard = MemoryFilestore({"logs/a.bin": payload(40_000, seed=9)})
    report, got = run_download(load_scenario("default", ["links.downlink.erasure=0.2"]),
                               "logs/a.bin", onboard=onboard, pcap=down)
    assert report.status == "ok" and got == onboard.get("logs/a.bin")
    assert PORTS["cfdp"] == 52008
    directives: set[str] = set()
    for path in (up, down):
        records = list(read_pcap(path))
        cfdp = [r for r in records if r.layer == "cfdp"]
        assert cfdp
        # each PDU is the data field of the APID 0x102 packet written just before it
        for i, r in enumerate(records):
            if r.layer == "cfdp":
                packet = SpacePacket.decode(records[i - 1].unit)
                assert records[i - 1].layer == "spp" and packet.apid == 0x102
                assert packet.data == r.unit
        out = subprocess.run(
            [TSHARK, "-r", str(path), "-d", f"udp.port=={PORTS['cfdp']},cfdp", "-Y", "cfdp",
             "-o", "udp.check_checksum:TRUE", "-T", "fields", "-E", "separator=;",
             "-E", "occurrence=f",
             "-e", "cfdp.pdu_type", "-e", "cfdp.fdtype", "-e", "cfdp.srcid", "-e", "cfdp.dstid",
             "-e", "udp.checksum.status", "-e", "_ws.malformed", "-e", "_ws.expert.severity"],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout.splitlines()
        rows = [line.split(";") for line in out if line]
        assert len(rows) == len(cfdp)
        for pdu_type, fdtype, src, dst, udp_ok, malformed, severity in rows:
            assert {src, dst} == {"1", "2"}
            assert udp_ok == "1" and malformed == "" and severity == "", rows
            directives.add("file data" if pdu_type == "1" else fdtype)
    # EOF 4, Finished 5, ACK 6, Metadata 7, NAK 8 (CCSDS 727.0-B-5 table 5-4), file data
    assert directives >= {"file data", "4", "5", "6", "7", "8"}


# -- faults: each ends with a status naming it, the old model stays ----------------------------

def test_upload_larger_than_the_onboard_store_is_refused() -> None:
    reg = registry()
    onboard = MemoryFilestore({"models/old.gguf": b"m" * 5000})
    report = run_upload(load_scenario("default", FAST), payload(30_000), "models/new.gguf",
                        swap=True, registry=reg, onboard=onboard, store_capacity=20_000)
    assert report.status == "filestore_rejection"
    assert "store full" in report.detail and "15000 free" in report.detail
    assert report.model is not None and not report.model["swapped"]
    assert reg.active is not None and reg.active.name == "old.gguf"
    assert onboard.names() == ["models/old.gguf"]
    assert report.as_dict()["status"] == "filestore_rejection"


def test_store_capacity_is_a_scenario_key_of_the_node() -> None:
    sc = load_scenario("default", [*FAST, "nodes.sat1.store_octets=20000"])
    assert sc.nodes["sat1"].store_octets == 20_000 and sc.nodes["relay"].store_octets is None
    reg = registry()
    report = run_upload(sc, payload(30_000), "models/new.gguf", swap=True, registry=reg)
    assert report.status == "filestore_rejection"
    assert "onboard store full" in report.detail and "20000 free" in report.detail
    assert reg.active is not None and reg.active.name == "old.gguf"
    # the option wins over the scenario
    report = run_upload(sc, payload(30_000), "models/new.gguf", store_capacity=40_000)
    assert report.status == "ok" and report.stored_octets == 30_000
    # the ground's store, for a download
    down = load_scenario("default", ["nodes.ground.store_octets=1000"])
    report, got = run_download(down, "answers/long-answer.txt")
    assert report.status == "filestore_rejection" and got is None
    assert "ground store full" in report.detail


@pytest.mark.parametrize(("setting", "message"), [
    ("nodes.sat1.store_octets=-1", "-1 must be >= 0"),
    ("nodes.sat1.store_octets=2.5", "must be an integer"),
    ("nodes.sat1.store_octets='big'", "must be an integer"),
    ("nodes.ground.store_size=1", "unknown key"),
])
def test_a_bad_store_capacity_names_its_key(setting: str, message: str) -> None:
    from linkstack.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as exc:
        load_scenario("default", [setting])
    assert exc.value.key == setting.split("=")[0]


def test_upload_to_an_unknown_entity_is_refused_before_sending() -> None:
    reg = registry()
    report = run_upload(load_scenario("default", FAST), payload(5000), "models/new.gguf",
                        swap=True, registry=reg, dest_entity=9)
    assert report.status == "unknown_entity" and "entity 9" in report.detail
    assert report.stored_octets == 0 and report.sha256 is None
    assert reg.active is not None and reg.active.name == "old.gguf"


@pytest.mark.parametrize("cls", [1, 2])
def test_upload_cancelled_from_the_ground(cls: int) -> None:
    reg = registry()
    data = payload(300_000)
    report = run_upload(load_scenario("default", FAST), data, "models/new.gguf",
                        transfer_class=cls, swap=True, registry=reg, cancel_after_s=0.4)
    assert report.status == "cancel_request_received"
    assert "cancelled from the ground at T+0.4 s" in report.detail
    assert report.total_s < 5 and report.stored_octets < len(data)
    assert report.model is not None and not report.model["swapped"]
    assert reg.active is not None and reg.active.name == "old.gguf"
