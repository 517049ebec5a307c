"""TM Master Channel multiplexing and demultiplexing (132.0-B-3 §4.2, §4.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import ChecksumError, ConfigError
from linkstack.frames.clcw import Clcw
from linkstack.frames.tm import TmChannelConfig, TmFrame
from linkstack.mux.packet_zone import FrameGap, PacketExtracted, PacketsLost
from linkstack.mux.tm import (
    FrameRejected,
    MasterChannelGap,
    OcfReceived,
    TmDemultiplexer,
    TmMultiplexer,
)
from linkstack.spp.packet import SpacePacket

CONFIG = TmChannelConfig(frame_length=128, has_fecf=True, has_ocf=True)
CLCW = Clcw(vcid=1, report_value=42).encode()


def _run(mux: TmMultiplexer, flush_all: bool = True) -> list[bytes]:
    frames = []
    while True:
        f = mux.next_frame(ocf=CLCW, flush=flush_all)
        if f is None or (f.idle and not mux.pending_octets()):
            break
        frames.append(f.data)
    return frames


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2]), st.integers(1, 300)), min_size=1,
                max_size=30))
def test_multiplex_demultiplex_round_trip(spec: list[tuple[int, int]]) -> None:
    mux = TmMultiplexer(0x2A, CONFIG, (0, 1, 2), policy="round_robin")
    sent: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    counts = dict.fromkeys(sent, 0)
    for vc, size in spec:
        p = SpacePacket(0x10 + vc, counts[vc], bytes([size % 256]) * size).encode()
        counts[vc] += 1
        sent[vc].append(p)
        mux.add_packet(vc, p)
    frames = _run(mux)
    demux = TmDemultiplexer(0x2A, CONFIG)
    got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    for i, fr in enumerate(frames):
        assert len(fr) == 128
        assert TmFrame.decode(fr, CONFIG).mc_frame_count == i % 256
        for e in demux.receive_frame(fr):
            if isinstance(e, PacketExtracted):
                got[e.vcid].append(e.packet)
            else:
                assert isinstance(e, OcfReceived) and Clcw.decode(e.ocf).report_value == 42
    assert got == sent


def test_corrupt_frame_is_rejected_and_its_packets_named() -> None:
    mux = TmMultiplexer(7, CONFIG, (0,))
    packets = [SpacePacket(0x20, i, bytes([i]) * 50).encode() for i in range(10)]
    for p in packets:
        mux.add_packet(0, p)
    frames = _run(mux)
    bad = bytearray(frames[2])
    bad[40] ^= 0x10
    frames[2] = bytes(bad)
    demux = TmDemultiplexer(7, CONFIG)
    events = [e for fr in frames for e in demux.receive_frame(fr)]
    rejected = [e for e in events if isinstance(e, FrameRejected)]
    assert len(rejected) == 1 and isinstance(rejected[0].error, ChecksumError)
    assert any(isinstance(e, MasterChannelGap) and e.lost == 1 for e in events)
    assert any(isinstance(e, FrameGap) and e.lost_frames == 1 for e in events)
    lost = [e for e in events if isinstance(e, PacketsLost)]
    got = [e.packet for e in events if isinstance(e, PacketExtracted)]
    named = {(e.first + k) for e in lost for k in range(e.count)}
    delivered = {SpacePacket.decode(p).sequence_count for p in got}
    assert named | delivered == set(range(10)) and not named & delivered
    assert demux.rejected == 1


def test_idle_frames_and_priority() -> None:
    mux = TmMultiplexer(1, CONFIG, (0, 1), policy="priority", priorities={1: 0, 0: 1})
    f = mux.next_frame(ocf=CLCW, flush=True)
    assert f is not None and f.idle and f.vcid == 7
    assert TmFrame.decode(f.data, CONFIG).is_idle
    assert mux.next_frame(ocf=CLCW) is None
    big = SpacePacket(1, 0, b"x" * 200).encode()
    mux.add_packet(0, big)
    mux.add_packet(1, big)
    assert mux.next_frame(ocf=CLCW).vcid == 1  # type: ignore[union-attr]
    demux = TmDemultiplexer(1, CONFIG)
    assert [type(e) for e in demux.receive_frame(f.data)] == [OcfReceived]
    assert demux.idle_frames == 1


def test_config_errors() -> None:
    with pytest.raises(ConfigError):
        TmMultiplexer(1, CONFIG, (8,))
    mux = TmMultiplexer(1, CONFIG, (0,))
    with pytest.raises(ConfigError):
        mux.next_frame(flush=True)  # OCF required on this channel
    with pytest.raises(ConfigError):
        mux.add_packet(3, SpacePacket(1, 0, b"x").encode())


def test_wrong_spacecraft_rejected() -> None:
    mux = TmMultiplexer(5, CONFIG, (0,))
    f = mux.next_frame(ocf=CLCW, flush=True)
    assert f is not None
    (event,) = TmDemultiplexer(6, CONFIG).receive_frame(f.data)
    assert isinstance(event, FrameRejected) and event.error.field == "scid"


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    demux = TmDemultiplexer(5, TmChannelConfig(frame_length=128, has_fecf=False))
    for e in demux.receive_frame(data):
        assert not isinstance(e, Exception)
