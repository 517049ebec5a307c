"""Streaming Space Packet parser with resynchronisation (CCSDS 133.0-B-2 §4.1)."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import PacketId, parse_space_packets
from spacepackets.ccsds.spacepacket import PacketType as SpPacketType

from linkstack.errors import ConfigError
from linkstack.spp.packet import (
    PacketType,
    SequenceFlags,
    SpacePacket,
    idle_packet,
    packet_identification,
)
from linkstack.spp.stream import BytesSkipped, PacketReceived, PacketStreamParser, StreamEvent

APIDS = (0x10, 0x42, 0x300)


@st.composite
def real_packets(draw: st.DrawFn) -> bytes:
    return SpacePacket(draw(st.sampled_from(APIDS)), draw(st.integers(0, 16383)),
                       draw(st.binary(min_size=1, max_size=120)),
                       draw(st.sampled_from(list(PacketType))), draw(st.booleans()),
                       draw(st.sampled_from(list(SequenceFlags)))).encode()


# Garbage octets >= 0x20 have a non-zero version field, so no header can start inside them.
clean_garbage = st.binary(max_size=40).map(lambda b: bytes(0x20 | x for x in b))


def feed_chunked(parser: PacketStreamParser, stream: bytes, cuts: list[int]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for a, b in itertools.pairwise(bounds):
        events += parser.feed(stream[a:b])
    return events


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[bytes], list[int]]:
    pkts = draw(st.lists(real_packets(), min_size=1, max_size=12))
    garbage = [draw(clean_garbage) for _ in range(len(pkts) + 1)]
    stream = b"".join(g + p for g, p in zip(garbage, pkts, strict=False)) + garbage[-1]
    cuts = draw(st.lists(st.integers(0, 10**6), max_size=12))
    return stream, pkts, garbage, cuts


@given(streams(), st.sampled_from(["apids", "packet_ids", "any"]))
def test_every_packet_and_exact_skips(s: tuple[bytes, list[bytes], list[bytes], list[int]],
                                      config: str) -> None:
    stream, pkts, garbage, cuts = s
    if config == "apids":
        parser = PacketStreamParser(apids=APIDS)
    elif config == "packet_ids":
        parser = PacketStreamParser(packet_ids=[
            packet_identification(a, t, f) for a in APIDS for t in PacketType for f in (0, 1)])
    else:
        parser = PacketStreamParser()
    events = feed_chunked(parser, stream, cuts) + parser.close()
    received = [e for e in events if isinstance(e, PacketReceived)]
    assert [e.packet.encode() for e in received] == pkts
    # Offsets are absolute stream positions.
    offsets = []
    pos = 0
    for g, p in zip(garbage, pkts, strict=False):
        pos += len(g)
        offsets.append(pos)
        pos += len(p)
    assert [e.offset for e in received] == offsets
    # Each garbage block is reported exactly (possibly in pieces), contiguously.
    skipped_between: list[list[BytesSkipped]] = [[]]
    for e in events:
        if isinstance(e, PacketReceived):
            skipped_between.append([])
        else:
            skipped_between[-1].append(e)
    assert [sum(e.octets for e in block) for block in skipped_between] == [len(g) for g in garbage]
    for block, start in zip(skipped_between, [0, *(o + len(p) for o, p in zip(
            offsets, pkts, strict=True))], strict=True):
        at = start
        for e in block:
            assert e.offset == at
            at += e.octets
    assert parser.octets_skipped == sum(map(len, garbage))
    assert parser.packets_received == len(pkts)
    assert parser.offset == len(stream) and parser.buffered == 0


# spacepackets' parse_space_packets masks the version bits away and matches the 13-bit packet
# ID only, so 0x23 0x00 (version 1) matches APID 0x300 there. For the comparison the garbage
# octets have low five bits 0x1C..0x1F, which no configured packet ID's first octet has.
oracle_garbage = st.binary(max_size=40).map(lambda b: bytes(0xFC | (x & 3) for x in b))


@st.composite
def oracle_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[bytes]]:
    pkts = draw(st.lists(real_packets(), min_size=1, max_size=12))
    garbage = [draw(oracle_garbage) for _ in range(len(pkts) + 1)]
    stream = b"".join(g + p for g, p in zip(garbage, pkts, strict=False)) + garbage[-1]
    return stream, pkts, garbage


@given(oracle_streams())
def test_agrees_with_spacepackets_parse_space_packets(
    s: tuple[bytes, list[bytes], list[bytes]]
) -> None:
    stream, pkts, garbage = s
    ids = [PacketId(SpPacketType(t), bool(f), a) for a in APIDS for t in (0, 1) for f in (0, 1)]
    theirs = parse_space_packets(stream, ids)
    parser = PacketStreamParser(packet_ids=[i.raw() for i in ids])
    ours = parser.feed(stream)
    assert [bytes(p) for p in theirs.tm_list] == pkts
    assert [e.packet.encode() for e in ours if isinstance(e, PacketReceived)] == pkts
    # spacepackets stops scanning 6 octets before the end; compare the skips before that.
    assert sum(len(r) for r in theirs.skipped_ranges) <= sum(map(len, garbage))
    assert parser.octets_skipped + parser.buffered == sum(map(len, garbage))


@settings(max_examples=150)
@given(st.lists(real_packets(), min_size=1, max_size=10),
       st.lists(st.binary(max_size=60), min_size=11, max_size=11),
       st.lists(st.integers(0, 10**6), max_size=8), st.sampled_from([200, 1000, 65542]))
def test_arbitrary_garbage_weaker_exact_property(pkts: list[bytes], garbage: list[bytes],
                                                 cuts: list[int], max_len: int) -> None:
    """With any garbage, a false header may swallow what follows it; then every real packet is
    either received at its own offset or lies inside a received false packet, every received
    packet is the exact stream octets at its offset, and every octet is accounted for."""
    stream = b"".join(g + p for g, p in zip(garbage, pkts, strict=False)) + garbage[len(pkts)]
    parser = PacketStreamParser(apids=APIDS, max_packet_length=max_len)
    events = feed_chunked(parser, stream, cuts)
    assert parser.buffered < max_len  # bounded
    events += parser.close()
    received = [e for e in events if isinstance(e, PacketReceived)]
    spans = [(e.offset, e.offset + len(e.packet)) for e in received]
    for e in received:
        assert stream[e.offset:e.offset + len(e.packet)] == e.packet.encode()
    pos = 0
    for g, p in zip(garbage, pkts, strict=False):
        pos += len(g)
        assert pos in {a for a, _ in spans} or any(a < pos < b for a, b in spans)
        pos += len(p)
    assert (sum(len(e.packet) for e in received)
            + sum(e.octets for e in events if isinstance(e, BytesSkipped))) == len(stream)


@given(st.binary(max_size=2000), st.lists(st.integers(0, 10**6), max_size=20))
def test_fuzz_random_bytes_never_raise_and_stay_bounded(raw: bytes, cuts: list[int]) -> None:
    parser = PacketStreamParser(max_packet_length=300)
    events = feed_chunked(parser, raw, cuts)
    assert parser.buffered < 300
    events += parser.close()
    total = sum(len(e.packet) if isinstance(e, PacketReceived) else e.octets for e in events)
    assert total == len(raw)


def test_large_declared_length_is_garbage_and_memory_is_bounded() -> None:
    parser = PacketStreamParser(max_packet_length=100)
    huge = SpacePacket(0x42, 0, b"\xff" * 1000).encode()  # declares 1006 octets > 100
    events = parser.feed(huge)
    assert not any(isinstance(e, PacketReceived) for e in events)
    assert parser.buffered < 100
    rnd = random.Random(1)
    for _ in range(200):
        parser.feed(rnd.randbytes(5000))
        assert parser.buffered < 100


def test_waits_for_a_split_packet() -> None:
    parser = PacketStreamParser(apids=[0x42])
    raw = SpacePacket(0x42, 3, b"x" * 50).encode()
    assert parser.feed(raw[:3]) == [] and parser.buffered == 3
    assert parser.feed(raw[3:40]) == [] and parser.buffered == 40
    [event] = parser.feed(raw[40:])
    assert event == PacketReceived(SpacePacket(0x42, 3, b"x" * 50), 0)
    assert parser.buffered == 0 and parser.offset == 56
    assert parser.feed(raw[:10]) == []
    assert parser.close() == [
        BytesSkipped(10, 56, "no complete packet before the end of the stream")]


def test_close_rescans_after_a_false_header() -> None:
    # 0x03 then a real packet: "03 00 10 00 01 00" reads as a plausible header of APID 0x300
    # declaring 263 octets. At the end of the stream it cannot complete, so close() skips it
    # and finds the real packet one octet further on.
    real = SpacePacket(0x10, 1, b"\x00").encode()
    parser = PacketStreamParser(apids=APIDS)
    assert parser.feed(b"\x03" + real) == []
    reason = "no complete packet before the end of the stream"
    assert parser.close() == [BytesSkipped(1, 0, reason),
                              PacketReceived(SpacePacket.decode(real), 1)]
    assert parser.close() == []


def test_unlisted_apid_is_skipped() -> None:
    parser = PacketStreamParser(apids=[0x42])
    other = SpacePacket(0x43, 0, b"abc").encode()
    mine = SpacePacket(0x42, 0, b"abc").encode()
    events = parser.feed(other + mine)
    assert events == [BytesSkipped(len(other), 0), PacketReceived(SpacePacket.decode(mine),
                                                                  len(other))]


def test_idle_packets_recognised_and_dropped() -> None:
    idle = idle_packet(12, fill=0xAA)
    data = SpacePacket(0x42, 1, b"d").encode()
    keep = PacketStreamParser(apids=[0x42])
    events = keep.feed(idle + data + idle)
    assert [e.packet.is_idle for e in events if isinstance(e, PacketReceived)] == [
        True, False, True]
    drop = PacketStreamParser(apids=[0x42], drop_idle=True)
    events = drop.feed(idle + data + idle)
    assert events == [PacketReceived(SpacePacket.decode(data), 12)]
    assert drop.idle_dropped == 2 and drop.octets_skipped == 0 and drop.offset == 12 + 7 + 12
    # Idle packets can also be refused as headers altogether (then they are skipped).
    refuse = PacketStreamParser(apids=[0x42], accept_idle=False)
    events = refuse.feed(idle + data)
    assert events == [BytesSkipped(12, 0), PacketReceived(SpacePacket.decode(data), 12)]
    # (Without an APID list, the fill 0xAAAA read as a length must exceed the maximum, or the
    # parser would wait for a 43 697-octet packet.)
    refuse_any = PacketStreamParser(accept_idle=False, max_packet_length=100)
    assert refuse_any.feed(idle + data) == [BytesSkipped(12, 0),
                                           PacketReceived(SpacePacket.decode(data), 12)]


def test_plausible_and_config_errors() -> None:
    parser = PacketStreamParser(apids=[1], max_packet_length=20)
    assert parser.plausible(SpacePacket(1, 0, b"x" * 14).encode())
    assert not parser.plausible(SpacePacket(1, 0, b"x" * 15).encode())  # 21 > 20
    assert not parser.plausible(SpacePacket(2, 0, b"x").encode())
    assert not parser.plausible(b"\x20\x01\x00\x00\x00\x00")  # version 1
    assert not parser.plausible(b"\x00\x01")
    for kwargs in ({"max_packet_length": 6}, {"max_packet_length": 65543},
                   {"packet_ids": [0x2000]}, {"apids": [2048]}):
        with pytest.raises(ConfigError):
            PacketStreamParser(**kwargs)  # type: ignore[arg-type]
