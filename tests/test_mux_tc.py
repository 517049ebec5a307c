"""TC VC/MAP multiplexing with MAP segmentation (232.0-B-4 §4.1.3.2, §4.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import ConfigError
from linkstack.frames.tc import MapSduReceived, SegmentsDiscarded, TcChannelConfig
from linkstack.mux.channel import FrameRejected
from linkstack.mux.tc import TcDemultiplexer, TcMultiplexer
from linkstack.spp.packet import SequenceFlags, SpacePacket

CFG = TcChannelConfig(has_fecf=True, segmented_vcids=frozenset({1}), max_frame_length=64)
CHANNELS = [(0, 0), (1, 2), (1, 5)]


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(CHANNELS), st.integers(1, 200)), min_size=1,
                max_size=20))
def test_segmented_round_trip(spec: list[tuple[tuple[int, int], int]]) -> None:
    mux = TcMultiplexer(0x2A, CFG, CHANNELS)
    sent: dict = {}
    for i, (ch, size) in enumerate(spec):
        if ch[0] == 0:
            size = min(size, CFG.data_field_capacity(0) - 6)  # VC 0 has no Segment Header
        p = SpacePacket(0x60 + ch[1], i, bytes([i]) * size).encode()
        sent.setdefault(ch, []).append(p)
        mux.add_packet(ch, p, tag=i)
    demux = TcDemultiplexer(0x2A, CFG)
    got: dict = {}
    while (out := mux.next_frame()) is not None:
        raw = out.frame.encode(CFG)
        assert len(raw) <= 64
        for e in demux.receive_frame(raw):
            assert isinstance(e, MapSduReceived), e
            got.setdefault((e.vcid, e.map_id), []).append(e.data)
    assert got == sent


def test_lost_segment_is_reported_not_glued() -> None:
    mux = TcMultiplexer(0x2A, CFG, [(1, 2)])
    big = SpacePacket(0x61, 0, bytes(range(150))).encode()
    nxt = SpacePacket(0x61, 1, b"next").encode()
    mux.add_packet((1, 2), big)
    mux.add_packet((1, 2), nxt)
    frames = []
    while (out := mux.next_frame()) is not None:
        frames.append(out.frame)
    assert [f.sequence_flags for f in frames[:2]] == [SequenceFlags.FIRST,
                                                      SequenceFlags.CONTINUATION]
    demux = TcDemultiplexer(0x2A, CFG)
    events = [e for k, f in enumerate(frames) if k != 1 for e in demux.receive_frame(
        f.encode(CFG))]
    assert [e.data for e in events if isinstance(e, MapSduReceived)] == [nxt]
    assert any(isinstance(e, SegmentsDiscarded) for e in events)


def test_errors() -> None:
    mux = TcMultiplexer(0x2A, CFG, CHANNELS)
    with pytest.raises(ConfigError):
        mux.add_packet((0, 0), SpacePacket(1, 0, bytes(100)).encode())
    with pytest.raises(ConfigError):
        mux.add_packet((3, 0), SpacePacket(1, 0, b"x").encode())
    (event,) = TcDemultiplexer(0x2A, CFG).receive_frame(b"\x00" * 8)
    assert isinstance(event, FrameRejected)
    mux.add_packet((0, 0), SpacePacket(1, 0, b"x").encode())
    out = mux.next_frame()
    assert out is not None
    (event,) = TcDemultiplexer(0x2B, CFG).receive_frame(out.frame.encode(CFG))
    assert isinstance(event, FrameRejected) and event.error.field == "scid"
