"""Sequence counters, segmentation and reassembly (CCSDS 133.0-B-2 §4.1.3.4)."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import SequenceFlags as SpSequenceFlags
from spacepackets.ccsds.spacepacket import SpacePacketHeader

from linkstack.errors import ConfigError, EncodeError
from linkstack.spp.counters import SequenceCounter, count_distance
from linkstack.spp.packet import PacketType, SequenceFlags, SpacePacket, idle_packet
from linkstack.spp.segmentation import (
    DuplicatePacket,
    OutOfOrder,
    PartialDiscarded,
    PayloadComplete,
    Reassembler,
    ReassemblyEvent,
    Segmenter,
    SequenceGap,
    SequenceReset,
)

F, C, L, U = (SequenceFlags.FIRST, SequenceFlags.CONTINUATION, SequenceFlags.LAST,
              SequenceFlags.UNSEGMENTED)


def feed_all(r: Reassembler, packets: Iterable[SpacePacket]) -> list[ReassemblyEvent]:
    events: list[ReassemblyEvent] = []
    for p in packets:
        events += r.feed(p)
    return events


def accounted(events: list[ReassemblyEvent], r: Reassembler) -> int:
    """Octets the events and the open partials account for (module docstring invariant)."""
    total = r.pending_octets
    for e in events:
        if isinstance(e, PayloadComplete):
            total += len(e.data)
        elif isinstance(e, PartialDiscarded | OutOfOrder | DuplicatePacket):
            total += e.octets
    return total


# -- SequenceCounter -----------------------------------------------------------------------------
def test_counter_wraps_16383_to_0() -> None:
    c = SequenceCounter({7: 16382})
    assert [c.next(7) for _ in range(4)] == [16382, 16383, 0, 1]
    assert count_distance(16383, 0) == 1 and count_distance(0, 16383) == 16383


def test_counter_per_apid_and_reserve() -> None:
    c = SequenceCounter()
    assert [c.next(1), c.next(1), c.next(2), c.next(1)] == [0, 1, 0, 2]
    c.set(3, 16380)
    assert c.reserve(3, 6) == [16380, 16381, 16382, 16383, 0, 1]
    assert c.peek(3) == 2 and c.peek(4) == 0
    assert c.reserve(3, 0) == [] and c.peek(3) == 2
    c.reset(1)
    assert c.next(1) == 0 and c.next(2) == 1
    c.reset()
    assert c.peek(2) == 0
    for bad in (lambda: c.next(2048), lambda: c.set(1, 16384), lambda: c.set(-1, 0),
                lambda: c.reserve(1, -1), lambda: c.peek(4000)):
        with pytest.raises(EncodeError):
            bad()


# -- Segmenter -------------------------------------------------------------------------------------
def test_segmenter_boundaries_and_flags() -> None:
    s = Segmenter(5, max_data_length=4, packet_type=PacketType.TC)
    [only] = s.segment(b"abcd")
    assert (only.sequence_flags, only.sequence_count, only.data) == (U, 0, b"abcd")
    assert only.packet_type == PacketType.TC
    two = s.segment(b"abcde")
    assert [(p.sequence_flags, p.sequence_count, p.data) for p in two] == [
        (F, 1, b"abcd"), (L, 2, b"e")]
    four = s.segment(b"0123456789ABCDE")
    assert [(p.sequence_flags, p.sequence_count) for p in four] == [(F, 3), (C, 4), (C, 5), (L, 6)]
    assert b"".join(p.data for p in four) == b"0123456789ABCDE"
    assert s.packets_needed(15) == 4 and s.packets_needed(4) == 1 and s.packets_needed(0) == 1
    # spacepackets reads the same sequence flags.
    sp = [SpacePacketHeader.unpack(p.encode()).seq_flags for p in four]
    assert sp == [SpSequenceFlags.FIRST_SEGMENT, SpSequenceFlags.CONTINUATION_SEGMENT,
                  SpSequenceFlags.CONTINUATION_SEGMENT, SpSequenceFlags.LAST_SEGMENT]


def test_segmenter_shared_counter_and_wrap() -> None:
    counter = SequenceCounter({9: 16382})
    a = Segmenter(9, max_data_length=2, counter=counter)
    b = Segmenter(10, max_data_length=2, counter=counter)
    assert [p.sequence_count for p in a.segment(b"xxxxxx")] == [16382, 16383, 0]
    assert [p.sequence_count for p in b.segment(b"y")] == [0]
    assert [p.sequence_count for p in a.segment(b"z")] == [1]


def test_segmenter_errors() -> None:
    with pytest.raises(EncodeError):
        Segmenter(1).segment(b"")
    for kwargs in ({"apid": 2047}, {"apid": -1}, {"apid": 1, "max_data_length": 0},
                   {"apid": 1, "max_data_length": 65537}):
        with pytest.raises(ConfigError):
            Segmenter(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Reassembler(max_payload=0)
    with pytest.raises(ConfigError):
        Reassembler(history=0)


# -- exact event sequences -------------------------------------------------------------------
def four_segments(start: int = 0) -> list[SpacePacket]:
    s = Segmenter(5, max_data_length=4, counter=SequenceCounter({5: start}))
    return s.segment(b"AAAABBBBCCCCDD")  # F C C L, 4+4+4+2 octets


def test_in_order_delivery() -> None:
    r = Reassembler()
    f, c1, c2, last = four_segments()
    assert r.feed(f) == [] and r.feed(c1) == [] and r.feed(c2) == []
    assert r.pending_octets == 12 and r.open_apids() == [5]
    assert r.feed(last) == [PayloadComplete(5, b"AAAABBBBCCCCDD", 0, 4)]
    assert r.pending_octets == 0 and r.open_apids() == []


def test_drop_reports_gap_discard_and_orphans() -> None:
    r = Reassembler()
    f, _c1, c2, last = four_segments()
    assert r.feed(f) == []
    assert r.feed(c2) == [
        SequenceGap(5, expected=1, received=2, missing=1),
        PartialDiscarded(5, 4, "sequence gap: 1 packet(s) missing", 1),
        OutOfOrder(5, 2, "continuation segment without a first segment", 4),
    ]
    assert r.feed(last) == [OutOfOrder(5, 3, "last segment without a first segment", 2)]
    after = SpacePacket(5, 4, b"next")
    assert r.feed(after) == [PayloadComplete(5, b"next", 4, 1)]


def test_duplicate_is_dropped() -> None:
    r = Reassembler()
    f, c1, c2, last = four_segments()
    events = feed_all(r, [f, c1, c1, c2, last, last])
    assert events == [DuplicatePacket(5, 1, 4), PayloadComplete(5, b"AAAABBBBCCCCDD", 0, 4),
                      DuplicatePacket(5, 3, 2)]


def test_same_count_other_contents_is_a_reset_not_a_duplicate() -> None:
    r = Reassembler()
    r.feed(SpacePacket(5, 0, b"one"))
    assert r.feed(SpacePacket(5, 0, b"two")) == [SequenceReset(5, 0, 0),
                                                 PayloadComplete(5, b"two", 0, 1)]
    assert r.feed(SpacePacket(5, 1, b"three")) == [PayloadComplete(5, b"three", 1, 1)]


def test_swap_never_glues() -> None:
    r = Reassembler()
    f, c1, c2, last = four_segments()
    events = feed_all(r, [f, c2, c1, last])
    assert events == [
        SequenceGap(5, 1, 2, 1),
        PartialDiscarded(5, 4, "sequence gap: 1 packet(s) missing", 1),
        OutOfOrder(5, 2, "continuation segment without a first segment", 4),
        OutOfOrder(5, 1, "late: 1 behind count 2", 4),
        OutOfOrder(5, 3, "last segment without a first segment", 2),
    ]
    assert accounted(events, r) == 14


def test_first_or_unsegmented_while_open() -> None:
    r = Reassembler()
    f, c1, _, _ = four_segments()
    feed_all(r, [f, c1])
    f2 = SpacePacket(5, 2, b"new!", sequence_flags=F)
    assert r.feed(f2) == [
        OutOfOrder(5, 2, "first segment while a payload is open"),
        PartialDiscarded(5, 8, "interrupted by a new first segment", 2),
    ]
    assert r.feed(SpacePacket(5, 3, b"solo")) == [
        PartialDiscarded(5, 4, "unsegmented packet before the last segment", 1),
        PayloadComplete(5, b"solo", 3, 1),
    ]


def test_source_restart_is_a_reset() -> None:
    # Counts 0..9, then the source restarts at 0: count 0 was already used by other contents,
    # which reordering cannot explain.
    r = Reassembler()
    f, c1, _, _ = four_segments(start=8)
    feed_all(r, [SpacePacket(5, i, b"old%d" % i) for i in range(8)] + [f, c1])
    assert r.feed(SpacePacket(5, 0, b"new0")) == [
        SequenceReset(5, previous=9, received=0),
        PartialDiscarded(5, 8, "sequence count reset by the source", 2),
        PayloadComplete(5, b"new0", 0, 1)]
    # Old packets arriving late are still recognised as delivered, even where their count
    # would fit the new sequence.
    assert r.feed(SpacePacket(5, 1, b"old1")) == [DuplicatePacket(5, 1, 4)]
    assert r.feed(SpacePacket(5, 1, b"new1")) == [PayloadComplete(5, b"new1", 1, 1)]
    assert r.feed(SpacePacket(5, 3, b"old3")) == [DuplicatePacket(5, 3, 4)]


def test_restart_far_behind_needs_a_second_packet() -> None:
    r = Reassembler(history=4)
    feed_all(r, [SpacePacket(5, i, b"old") for i in range(1000, 1010)])
    assert r.feed(SpacePacket(5, 0, b"new0")) == [
        OutOfOrder(5, 0, "late: 1009 behind count 1009", 4)]
    assert r.feed(SpacePacket(5, 1, b"new1")) == [SequenceReset(5, previous=1009, received=1),
                                                  PayloadComplete(5, b"new1", 1, 1)]


def test_reordering_never_delivers_out_of_order() -> None:
    r = Reassembler()
    p = [SpacePacket(5, i, b"p%d" % i) for i in range(4)]
    events = feed_all(r, [p[2], p[0], p[1], p[3]])
    assert events == [PayloadComplete(5, b"p2", 2, 1),
                      OutOfOrder(5, 0, "late: 2 behind count 2", 2),
                      OutOfOrder(5, 1, "late: 1 behind count 2", 2),
                      PayloadComplete(5, b"p3", 3, 1)]


def test_late_replays_are_duplicates_not_resets() -> None:
    r = Reassembler()
    old = [SpacePacket(5, i, b"p%d" % i) for i in range(10)]
    feed_all(r, old)
    assert feed_all(r, [old[3], old[4]]) == [DuplicatePacket(5, 3, 2), DuplicatePacket(5, 4, 2)]
    assert r.feed(SpacePacket(5, 10, b"p10")) == [PayloadComplete(5, b"p10", 10, 1)]


def test_gap_across_wrap_and_far_jump() -> None:
    r = Reassembler()
    assert feed_all(r, [SpacePacket(5, 16382, b"a"), SpacePacket(5, 16383, b"b"),
                        SpacePacket(5, 0, b"c")]) == [
        PayloadComplete(5, b"a", 16382, 1), PayloadComplete(5, b"b", 16383, 1),
        PayloadComplete(5, b"c", 0, 1)]
    # 8191 ahead is a gap; 8192 or more ahead is taken as behind (half the count space).
    assert r.feed(SpacePacket(5, 8191, b"d")) == [SequenceGap(5, 1, 8191, 8190),
                                                  PayloadComplete(5, b"d", 8191, 1)]
    r = Reassembler()
    r.feed(SpacePacket(5, 100, b"a"))
    assert r.feed(SpacePacket(5, 8292, b"e")) == [
        OutOfOrder(5, 8292, "late: 8192 behind count 100", 1)]


def test_max_payload_bounds_memory_and_reports() -> None:
    r = Reassembler(max_payload=10)
    f, c1, c2, last = four_segments()
    events = feed_all(r, [f, c1, c2])
    assert events == [] and r.pending_octets == 12
    assert r.feed(last) == [PartialDiscarded(5, 14, "payload exceeds max_payload (10 octets)", 4)]
    # interrupted while overflowing: the reason is still the overflow
    f, c1, c2, _ = four_segments(start=4)
    feed_all(r, [f, c1, c2])
    assert r.feed(SpacePacket(5, 9, b"x")) == [
        SequenceGap(5, 7, 9, 2),
        PartialDiscarded(5, 12, "payload exceeds max_payload (10 octets)", 3),
        PayloadComplete(5, b"x", 9, 1),
    ]
    assert r.feed(SpacePacket(5, 10, bytes(11))) == [
        PartialDiscarded(5, 11, "payload exceeds max_payload (10 octets)", 1)]


def test_idle_flush_reset() -> None:
    r = Reassembler()
    assert r.feed(SpacePacket.decode(idle_packet(10))) == [] and r.idle_packets == 1
    f, c1, _, _ = four_segments()
    feed_all(r, [f, c1, SpacePacket(6, 0, b"x", sequence_flags=F)])
    assert r.flush(5) == [PartialDiscarded(5, 8, "flushed", 2)]
    assert r.flush() == [PartialDiscarded(6, 1, "flushed", 1)]
    assert r.flush() == []
    r.feed(SpacePacket(6, 1, b"y", sequence_flags=F))
    assert r.reset() == [PartialDiscarded(6, 1, "flushed", 1)]
    # after reset, any count is accepted as the start of a sequence
    assert r.feed(SpacePacket(6, 100, b"z")) == [PayloadComplete(6, b"z", 100, 1)]
    assert r.reset(6) == [] and r.reset(99) == []


# -- properties ----------------------------------------------------------------------------------
@st.composite
def traffic(draw: st.DrawFn) -> tuple[dict[int, list[bytes]], list[SpacePacket]]:
    """Payloads for 1-3 APIDs, segmented, interleaved keeping each APID's order."""
    apid_list = draw(st.lists(st.integers(0, 2046), min_size=1, max_size=3, unique=True))
    counter = SequenceCounter({a: draw(st.integers(0, 16383)) for a in apid_list})
    payloads: dict[int, list[bytes]] = {}
    queues: list[list[SpacePacket]] = []
    for apid in apid_list:
        seg = Segmenter(apid, max_data_length=draw(st.integers(1, 40)), counter=counter)
        n = draw(st.integers(1, 5))
        # Two index octets make every payload unique, so a delivery identifies its payload.
        payloads[apid] = [bytes([i, apid & 0xFF]) + draw(st.binary(max_size=150))
                          for i in range(n)]
        queues.append([p for payload in payloads[apid] for p in seg.segment(payload)])
    order = draw(st.permutations([i for i, q in enumerate(queues) for _ in q]))
    heads = [0] * len(queues)
    stream = []
    for q in order:
        stream.append(queues[q][heads[q]])
        heads[q] += 1
    return payloads, stream


@given(traffic())
def test_segmentation_reassembly_identity(t: tuple[dict[int, list[bytes]], list[SpacePacket]]
                                          ) -> None:
    payloads, stream = t
    r = Reassembler()
    events = feed_all(r, (SpacePacket.decode(p.encode()) for p in stream))
    assert all(isinstance(e, PayloadComplete) for e in events)
    for apid, sent in payloads.items():
        got = [e for e in events if e.apid == apid]
        assert [e.data for e in got] == sent  # type: ignore[union-attr]
    assert r.pending_octets == 0


def delivered_check(payloads: dict[int, list[bytes]], events: list[ReassemblyEvent]) -> None:
    """Every delivery is a genuine payload of its APID, at most once, in sending order."""
    for apid, sent in payloads.items():
        got = [e.data for e in events if isinstance(e, PayloadComplete) and e.apid == apid]
        positions = [sent.index(d) for d in got]  # ValueError: glued or foreign data
        assert positions == sorted(set(positions))


@given(traffic(), st.data())
def test_drops_lose_exactly_the_affected_payloads(
    t: tuple[dict[int, list[bytes]], list[SpacePacket]], data: st.DataObject
) -> None:
    payloads, stream = t
    keep = data.draw(st.lists(st.booleans(), min_size=len(stream), max_size=len(stream)))
    received = [p for p, k in zip(stream, keep, strict=True) if k]
    r = Reassembler()
    events = feed_all(r, received)
    delivered_check(payloads, events)
    # Delivered: exactly the payloads none of whose packets was dropped.
    for apid, sent in payloads.items():
        lost_payload = set()
        idx = 0
        for p, k in zip(stream, keep, strict=True):
            if p.apid != apid:
                continue
            if p.sequence_flags in (F, U):
                idx += 1
            if not k:
                lost_payload.add(idx - 1)
        expected = [d for i, d in enumerate(sent) if i not in lost_payload]
        got = [e.data for e in events if isinstance(e, PayloadComplete) and e.apid == apid]
        assert got == expected
        # Gaps: one per run of dropped packets between two received ones.
        counts = [p.sequence_count for p in received if p.apid == apid]
        gaps = [SequenceGap(apid, (a + 1) % 16384, b, count_distance(a, b) - 1)
                for a, b in itertools.pairwise(counts) if count_distance(a, b) != 1]
        assert [e for e in events if isinstance(e, SequenceGap) and e.apid == apid] == gaps
    assert accounted(events, r) == sum(len(p.data) for p in received)
    flushed = r.flush()
    assert accounted(events + flushed, r) == sum(len(p.data) for p in received)
    assert r.pending_octets == 0


@given(traffic(), st.data())
def test_duplicates_are_reported_and_never_delivered_twice(
    t: tuple[dict[int, list[bytes]], list[SpacePacket]], data: st.DataObject
) -> None:
    _, stream = t
    dup = data.draw(st.lists(st.booleans(), min_size=len(stream), max_size=len(stream)))
    received = [q for p, d in zip(stream, dup, strict=True) for q in ([p, p] if d else [p])]
    r = Reassembler()
    events = feed_all(r, received)
    assert [e.data for e in events if isinstance(e, PayloadComplete)] == [  # type: ignore[union-attr]
        e.data for e in feed_all(Reassembler(), stream)]  # type: ignore[union-attr]
    assert Counter(type(e) for e in events)[DuplicatePacket] == sum(dup)
    assert accounted(events, r) == sum(len(p.data) for p in received)


@settings(max_examples=150)
@given(traffic(), st.randoms(use_true_random=False))
def test_random_faults_never_deliver_wrong_payloads(
    t: tuple[dict[int, list[bytes]], list[SpacePacket]], rnd: random.Random
) -> None:
    payloads, stream = t
    received = list(stream)
    for _ in range(rnd.randint(1, 4)):
        if not received:
            break
        i = rnd.randrange(len(received))
        op = rnd.choice(["drop", "dup", "late_dup", "swap"])
        if op == "drop":
            del received[i]
        elif op == "dup":
            received.insert(i, received[i])
        elif op == "late_dup":  # within the reassembler's history window (64 packets)
            received.insert(rnd.randint(i, min(i + 32, len(received))), received[i])
        elif i + 1 < len(received):
            received[i], received[i + 1] = received[i + 1], received[i]
    r = Reassembler()
    events = feed_all(r, received)
    delivered_check(payloads, events)
    assert accounted(events, r) == sum(len(p.data) for p in received)
