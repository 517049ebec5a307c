"""Frames delivered twice (a ground station network or a relay forwarding a copy): the TM, AOS
and USLP demultiplexers drop exact repeats (FrameDuplicate), so no packet is delivered twice
and no false gap of almost a whole frame-count cycle is reported."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.frames.aos import AosChannelConfig
from linkstack.frames.tm import TmChannelConfig
from linkstack.frames.uslp import UslpChannelConfig, UslpFrame
from linkstack.mux.aos import AosDemultiplexer, AosMultiplexer
from linkstack.mux.channel import DUPLICATE_WINDOW, FrameDuplicate, OcfReceived
from linkstack.mux.packet_zone import PacketExtracted
from linkstack.mux.tm import MasterChannelGap, TmDemultiplexer, TmMultiplexer
from linkstack.mux.uslp import UslpDemultiplexer, UslpMultiplexer
from linkstack.spp.packet import SpacePacket

TM = TmChannelConfig(frame_length=128, has_fecf=True)
AOS = AosChannelConfig(frame_length=150, has_fecf=True)
USLP = UslpChannelConfig(frame_length=140, fecf_size=2)


def _frames(kind: str, packets: list[bytes]) -> tuple[list[bytes], object]:
    if kind == "tm":
        mux: object = TmMultiplexer(0x2A, TM, (1,))
        demux: object = TmDemultiplexer(0x2A, TM)
        ch: object = 1
    elif kind == "aos":
        mux, demux, ch = AosMultiplexer(0x2A, AOS, (1,)), AosDemultiplexer(0x2A, AOS), 1
    else:
        mux = UslpMultiplexer(0x2A, USLP, [(1, 0)], vc_frame_count_length=1)
        demux, ch = UslpDemultiplexer(0x2A, USLP), (1, 0)
    for p in packets:
        mux.add_packet(ch, p)  # type: ignore[attr-defined]
    frames = []
    while mux.pending_octets():  # type: ignore[attr-defined]
        frames.append(mux.next_frame(flush=True).data)  # type: ignore[attr-defined]
    return frames, demux


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["tm", "aos", "uslp"]), n=st.integers(1, 40),
       copies=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 20)), max_size=30),
       seed=st.integers(0, 10**6))
def test_repeated_frames_deliver_every_packet_once_without_gaps(
        kind: str, n: int, copies: list[tuple[int, int]], seed: int) -> None:
    rng = random.Random(seed)
    packets = [SpacePacket(0x10, i, bytes([i]) * rng.randint(1, 200)).encode() for i in range(n)]
    frames, demux = _frames(kind, packets)
    stream = list(frames)
    for which, lag in copies:  # a copy of frame i arrives `lag` frames after it
        i = which % len(frames)
        at = min(len(stream), stream.index(frames[i]) + 1 + lag)
        stream.insert(at, frames[i])
    got, duplicates = [], 0
    for f in stream:
        for e in demux.receive_frame(f):  # type: ignore[attr-defined]
            if isinstance(e, PacketExtracted):
                got.append(e.packet)
            elif isinstance(e, FrameDuplicate):
                duplicates += 1
                assert e.layer == kind and e.vcid == 1
            else:
                assert isinstance(e, OcfReceived), e  # no gap, no loss, no error
    assert got == packets
    assert duplicates == len(stream) - len(frames) == demux.duplicates  # type: ignore[attr-defined]


def test_a_copy_beyond_the_window_is_not_taken_for_a_duplicate() -> None:
    packets = [SpacePacket(0x10, i, bytes(120)).encode() for i in range(DUPLICATE_WINDOW + 2)]
    frames, demux = _frames("tm", packets)
    for f in frames:
        demux.receive_frame(f)  # type: ignore[attr-defined]
    events = demux.receive_frame(frames[0])  # type: ignore[attr-defined]
    assert not any(isinstance(e, FrameDuplicate) for e in events)
    assert any(isinstance(e, MasterChannelGap) for e in events)


def test_uslp_frames_without_a_frame_count_are_never_dropped_as_copies() -> None:
    """Without a VC Frame Count two identical frames may be two real transmissions."""
    config = UslpChannelConfig(frame_length=None)
    frame = UslpFrame(0x2A, 1, data_field=SpacePacket(0x10, 0, b"again").encode(),
                      tfdz_construction_rules=0b000, first_header_pointer=0)
    buf = frame.encode(UslpChannelConfig(frame_length=frame.encoded_length(config)))
    demux = UslpDemultiplexer(0x2A, UslpChannelConfig(frame_length=len(buf)))
    for _ in range(2):
        assert [type(e) for e in demux.receive_frame(buf)] == [PacketExtracted]
    assert demux.duplicates == 0


@pytest.mark.parametrize("kind", ["tm", "aos", "uslp"])
def test_different_frames_with_equal_content_are_not_copies(kind: str) -> None:
    """Two frames carrying identical packets still differ in their frame counts."""
    packet = SpacePacket(0x10, 0, bytes(300)).encode()
    frames, demux = _frames(kind, [packet, packet])
    got = [e for f in frames for e in demux.receive_frame(f)  # type: ignore[attr-defined]
           if isinstance(e, PacketExtracted)]
    assert len(got) == 2 and demux.duplicates == 0  # type: ignore[attr-defined]
