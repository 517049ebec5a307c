"""Packet zones: packets spanning frames, first header pointer, gaps (132.0-B-3 §4.1.4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import ConfigError
from linkstack.mux.packet_zone import (
    FHP_IDLE_ONLY_TM,
    FHP_NO_PACKET_START_TM,
    FhpConvention,
    FrameGap,
    PacketExtracted,
    PacketExtractor,
    PacketsLost,
    PacketZoneBuilder,
    ZoneError,
)
from linkstack.mux.scheduler import VcScheduler
from linkstack.spp.packet import SpacePacket

TM = FhpConvention.for_layer("tm")


def _packets(sizes: list[int], apids: list[int]) -> list[bytes]:
    counts: dict[int, int] = {}
    out = []
    for i, (size, apid) in enumerate(zip(sizes, apids, strict=True)):
        c = counts.get(apid, 0)
        counts[apid] = (c + 1) % 16384
        out.append(SpacePacket(apid, c, bytes([i % 256]) * size).encode())
    return out


def test_fhp_points_at_first_header_and_special_values() -> None:
    b = PacketZoneBuilder(TM)
    p1 = SpacePacket(1, 0, b"A" * 14).encode()  # 20 octets
    p2 = SpacePacket(1, 1, b"B" * 24).encode()  # 30 octets
    b.add_packet(p1)
    b.add_packet(p2)
    z1 = b.build(16)
    assert z1 is not None and z1.first_header_pointer == 0 and z1.data == p1[:16]
    z2 = b.build(16)  # 4 octets end p1, p2 starts at offset 4
    assert z2 is not None and z2.first_header_pointer == 4
    assert z2.data == p1[16:] + p2[:12]
    z3 = b.build(16)  # only continuation of p2 (18 octets left)
    assert z3 is not None and z3.first_header_pointer == FHP_NO_PACKET_START_TM
    assert b.build(16) is None  # 2 octets pending, no flush
    z4 = b.build(16, flush=True)
    assert z4 is not None and z4.first_header_pointer == 2 and z4.idle_octets == 14
    z5 = b.build(16, flush=True)
    assert z5 is not None and z5.first_header_pointer == FHP_IDLE_ONLY_TM
    assert z5.idle_octets == 16


def test_idle_fill_shorter_than_a_packet_spans_next_zone() -> None:
    b = PacketZoneBuilder(TM)
    b.add_packet(SpacePacket(5, 0, b"x" * 7).encode())  # 13 octets
    z = b.build(16, flush=True)  # 3 octets missing: idle packet of 7 spans on
    assert z is not None and z.first_header_pointer == 0
    z2 = b.build(16, flush=True)
    assert z2 is not None
    ex = PacketExtractor(0, TM)
    events = ex.feed(0, z.first_header_pointer, z.data) + ex.feed(
        1, z2.first_header_pointer, z2.data)
    assert [e.packet for e in events if isinstance(e, PacketExtracted)] == [
        SpacePacket(5, 0, b"x" * 7).encode()]
    assert ex.idle_packets >= 2


@settings(max_examples=150)
@given(
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=40),
    capacity=st.integers(8, 400),
    data=st.data(),
)
def test_spanning_round_trip(sizes: list[int], capacity: int, data: st.DataObject) -> None:
    apids = data.draw(st.lists(st.integers(0, 2046), min_size=len(sizes), max_size=len(sizes)))
    packets = _packets(sizes, apids)
    b = PacketZoneBuilder(TM)
    for p in packets:
        b.add_packet(p)
    ex = PacketExtractor(3, TM)
    out: list[bytes] = []
    count = 0
    while b.pending_octets:
        z = b.build(capacity, flush=True)
        assert z is not None and len(z.data) == capacity
        for e in ex.feed(count % 256, z.first_header_pointer, z.data):
            assert isinstance(e, PacketExtracted), e
            out.append(e.packet)
        count += 1
    assert out == packets
    assert ex.discarded_octets == 0


@settings(max_examples=150)
@given(
    sizes=st.lists(st.integers(1, 120), min_size=1, max_size=60),
    capacity=st.integers(8, 200),
    data=st.data(),
)
def test_frame_gaps_are_reported_and_name_lost_packets(
    sizes: list[int], capacity: int, data: st.DataObject
) -> None:
    apids = data.draw(st.lists(st.sampled_from([10, 11, 12]), min_size=len(sizes),
                               max_size=len(sizes)))
    # Sentinel packets per APID before and after the lossy stretch, never dropped, so the
    # per-APID sequence counts can name every loss.
    leaders = [SpacePacket(a, 16383, b"L").encode() for a in (10, 11, 12)]
    packets = _packets(sizes, apids)
    b = PacketZoneBuilder(TM)

    def zones_of(pkts: list[bytes]) -> list:
        for p in pkts:
            b.add_packet(p)
        out = []
        while b.pending_octets:
            out.append(b.build(capacity, flush=True))
        return out

    head = zones_of(leaders)
    zones = zones_of(packets)
    counts = {a: apids.count(a) for a in (10, 11, 12)}
    sentinels = [SpacePacket(a, counts[a], b"S").encode() for a in (10, 11, 12)]
    tail = zones_of(sentinels)
    drop = data.draw(st.lists(st.booleans(), min_size=len(zones), max_size=len(zones)))
    ex = PacketExtractor(0, TM)
    delivered: list[bytes] = []
    lost: set[tuple[int, int]] = set()
    gaps = 0
    for i, z in enumerate(head + zones + tail):
        if len(head) <= i < len(head) + len(zones) and drop[i - len(head)]:
            continue
        assert z is not None
        for e in ex.feed(i % 256, z.first_header_pointer, z.data):
            if isinstance(e, PacketExtracted):
                delivered.append(e.packet)
            elif isinstance(e, PacketsLost):
                assert e.count == (e.last - e.first) % 16384 + 1
                lost.update((e.apid, (e.first + k) % 16384) for k in range(e.count))
            elif isinstance(e, FrameGap):
                gaps += 1
                assert e.lost_frames >= 1
            else:
                raise AssertionError(e)
    # Delivered packets are intact and in order: a subsequence of what was sent.
    sent = leaders + packets + sentinels
    it = iter(sent)
    assert all(any(d == s for s in it) for d in delivered)
    # Every packet not delivered is named by a PacketsLost event, and nothing else is.
    ids = {(SpacePacket.decode(p).apid, SpacePacket.decode(p).sequence_count): p for p in sent}
    missing = {k for k, p in ids.items() if p not in delivered}
    assert missing == lost
    assert all(s in delivered for s in sentinels)
    assert (gaps > 0) == any(drop[: len(zones)])


def test_bad_fhp_and_corrupt_header_are_zone_errors() -> None:
    ex = PacketExtractor(0, TM)
    events = ex.feed(0, 50, b"\x00" * 20)
    assert isinstance(events[0], ZoneError) and events[0].discarded_octets == 20
    # version bits set: corrupt header
    events = ex.feed(1, 0, b"\xe0" + b"\x00" * 19)
    assert isinstance(events[0], ZoneError)
    # resynchronises on the next FHP
    p = SpacePacket(9, 0, b"ok").encode()
    events = ex.feed(2, 3, b"zzz" + p + b"\x00" * 0)
    assert [e.packet for e in events if isinstance(e, PacketExtracted)] == [p]


def test_fhp_convention_unknown_layer() -> None:
    with pytest.raises(ConfigError):
        FhpConvention.for_layer("tc")


def test_priority_scheduler() -> None:
    s = VcScheduler([0, 1, 2], "priority", priorities={2: -1})
    assert s.pick({0, 1, 2}) == 2
    assert s.pick({0, 1}) == 0
    assert s.pick(set()) is None


def test_weighted_round_robin() -> None:
    s = VcScheduler([0, 1, 2], "round_robin", weights={0: 2})
    seq = [s.pick({0, 1, 2}) for _ in range(8)]
    assert seq == [0, 0, 1, 2, 0, 0, 1, 2]
    # a VC that is not ready is skipped without losing the others' turns
    assert [s.pick({1, 2}) for _ in range(3)] == [1, 2, 1]


def test_scheduler_config_errors() -> None:
    with pytest.raises(ConfigError):
        VcScheduler([0], "fifo")
    with pytest.raises(ConfigError):
        VcScheduler([0], weights={0: 0})
    with pytest.raises(ConfigError):
        VcScheduler([0], priorities={7: 1})


def test_zone_tags_name_every_packet_with_octets_in_the_zone() -> None:
    b = PacketZoneBuilder(TM)
    b.add_packet(SpacePacket(1, 0, b"a" * 14).encode(), tag="m1")  # 20 octets: [0, 20)
    b.add_packet(SpacePacket(1, 1, b"b" * 4).encode())  # untagged: [20, 30)
    b.add_packet(SpacePacket(1, 2, b"c" * 24).encode(), tag="m2")  # [30, 60)
    tags = []
    while b.pending_octets:
        z = b.build(16, flush=True)
        assert z is not None
        tags.append(z.tags)
    # zones [0,16) [16,32) [32,48) [48,64) and the idle packet spanning into [64,80)
    assert tags == [("m1",), ("m1", "m2"), ("m2",), ("m2",), ()]
