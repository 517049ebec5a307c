"""AOS and USLP packet multiplexing (732.0-B-4 §4.2, 732.1-B-2 §4.2) round trips and gaps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import ConfigError
from linkstack.frames.aos import AosChannelConfig, AosFrame
from linkstack.frames.clcw import Clcw
from linkstack.frames.uslp import UslpChannelConfig, UslpFrame
from linkstack.mux.aos import AosDemultiplexer, AosMultiplexer
from linkstack.mux.channel import FrameRejected, OcfReceived
from linkstack.mux.packet_zone import FrameGap, PacketExtracted, PacketsLost
from linkstack.mux.uslp import UslpDemultiplexer, UslpMultiplexer
from linkstack.spp.packet import SpacePacket

AOS = AosChannelConfig(frame_length=200, has_fecf=True, has_fhec=True, insert_zone_length=4,
                       ocf_vcids=frozenset({1}))
USLP = UslpChannelConfig(frame_length=160, fecf_size=4)
OCF = Clcw(vcid=1, report_value=9).encode()


def _drain(mux, **kw) -> list[bytes]:
    out = []
    while mux.pending_octets():
        f = mux.next_frame(flush=True, **kw)
        assert f is not None
        out.append(f.data)
    return out


def _packets(spec: list[tuple[object, int]], apid_of) -> tuple[list, dict]:
    counts: dict = {}
    sent: dict = {}
    items = []
    for ch, size in spec:
        c = counts.get(ch, 0)
        counts[ch] = c + 1
        p = SpacePacket(apid_of(ch), c, bytes([size % 256]) * size).encode()
        sent.setdefault(ch, []).append(p)
        items.append((ch, p))
    return items, sent


@settings(max_examples=50)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 5]), st.integers(1, 400)), min_size=1,
                max_size=25))
def test_aos_round_trip(spec: list[tuple[int, int]]) -> None:
    mux = AosMultiplexer(0x7B, AOS, (0, 1, 5))
    items, sent = _packets(spec, lambda ch: 0x20 + ch)
    for ch, p in items:
        mux.add_packet(ch, p)
    demux = AosDemultiplexer(0x7B, AOS)
    got: dict = {}
    for fr in _drain(mux, ocf=OCF):
        assert len(fr) == 200
        for e in demux.receive_frame(fr):
            if isinstance(e, PacketExtracted):
                got.setdefault(e.vcid, []).append(e.packet)
            else:
                assert isinstance(e, OcfReceived) and e.vcid == 1
    assert got == sent


def test_aos_idle_frames_counts_and_rejection() -> None:
    mux = AosMultiplexer(0x7B, AOS, (0,))
    idle = mux.next_frame(flush=True)
    assert idle is not None and idle.idle and AosFrame.decode(idle.data, AOS).is_idle
    for i in range(6):
        mux.add_packet(0, SpacePacket(0x30, i, bytes(150)).encode())
    frames = _drain(mux)
    bad = bytearray(frames[1])
    bad[50] ^= 0xFF
    demux = AosDemultiplexer(0x7B, AOS)
    events = [e for fr in [frames[0], bytes(bad), *frames[2:]] for e in demux.receive_frame(fr)]
    assert sum(isinstance(e, FrameRejected) for e in events) == 1
    assert any(isinstance(e, FrameGap) for e in events)
    lost = sum(e.count for e in events if isinstance(e, PacketsLost))
    got = sum(isinstance(e, PacketExtracted) for e in events)
    assert got + lost == 6 and lost >= 1
    with pytest.raises(ConfigError):
        AosMultiplexer(1, AosChannelConfig(bpdu_vcids=frozenset({2})), (2,))


@settings(max_examples=50)
@given(st.lists(st.tuples(st.sampled_from([(1, 0), (1, 3), (2, 0)]), st.integers(1, 300)),
                min_size=1, max_size=25), st.integers(1, 4))
def test_uslp_round_trip_over_maps(spec: list[tuple[tuple[int, int], int]], vcf_len: int) -> None:
    mux = UslpMultiplexer(0x1234, USLP, [(1, 0), (1, 3), (2, 0)],
                          vc_frame_count_length=vcf_len, ocf=True)
    items, sent = _packets(spec, lambda ch: 0x40 + ch[0] * 16 + ch[1])
    for ch, p in items:
        mux.add_packet(ch, p)
    demux = UslpDemultiplexer(0x1234, USLP)
    got: dict = {}
    for fr in _drain(mux, ocf=OCF):
        frame = UslpFrame.decode(fr, USLP)
        assert len(fr) == 160 and frame.vc_frame_count_length == vcf_len
        for e in demux.receive_frame(fr):
            if isinstance(e, PacketExtracted):
                p = SpacePacket.decode(e.packet)
                ch = next(k for k in sent if 0x40 + k[0] * 16 + k[1] == p.apid)
                got.setdefault(ch, []).append(e.packet)
            else:
                assert isinstance(e, OcfReceived), e
    assert got == sent


def test_uslp_lost_frame_is_reported_never_glued() -> None:
    mux = UslpMultiplexer(0x1234, USLP, [(1, 0), (1, 1)])
    packets = {ch: [SpacePacket(0x50 + ch[1], i, bytes([i]) * 120).encode() for i in range(5)]
               for ch in [(1, 0), (1, 1)]}
    for i in range(5):
        for ch in packets:
            mux.add_packet(ch, packets[ch][i])
    frames = _drain(mux)
    demux = UslpDemultiplexer(0x1234, USLP)
    events = [e for k, fr in enumerate(frames) if k != 3 for e in demux.receive_frame(fr)]
    got = [e.packet for e in events if isinstance(e, PacketExtracted)]
    every = [p for ps in packets.values() for p in ps]
    assert all(p in every for p in got)  # nothing glued from wrong pieces
    lost = sum(e.count for e in events if isinstance(e, PacketsLost))
    assert len(got) + lost == len(every)
    with pytest.raises(ConfigError):
        UslpMultiplexer(1, UslpChannelConfig(frame_length=None), [(0, 0)])
