"""The CFDP entity (linkstack.cfdp) on its own: two entities, a scripted link, virtual time.

Each weak point of cfdp-py on lossy links has a test here that fails without the entity's
workaround, and, where it documents what cfdp-py itself does, a test on the bare handler.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cfdppy import IndicationConfig, LocalEntityConfig, PutRequest
from cfdppy.handler import DestHandler
from cfdppy.handler.dest import TransactionStep as DestStep
from cfdppy.handler.dest import _AckedModeParams
from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.cfdp import ChecksumType, ConditionCode, PduConfig, TransmissionMode
from spacepackets.cfdp.pdu import (
    AckPdu,
    DirectiveType,
    EofPdu,
    FileDataPdu,
    FinishedPdu,
    MetadataPdu,
    NakPdu,
    PduFactory,
)
from spacepackets.util import ByteFieldU16

from linkstack.cfdp import (
    CfdpEntity,
    EntityConfig,
    Fault,
    MemoryFilestore,
    TransactionFinished,
    TransferClass,
)
from linkstack.cfdp.filestore import file_checksum
from linkstack.cfdp.models import Manifest, ModelInfo, ModelRegistry
from linkstack.cfdp.naks import RangeSet, nak_sequence, trim_requests
from linkstack.cfdp.timers import EntityClock, VirtualCountdown
from linkstack.errors import ConfigError

# -- harness ------------------------------------------------------------------------------------


def kind(data: bytes) -> str:
    pdu = PduFactory.from_raw(data)
    if isinstance(pdu, FileDataPdu):
        return "fd"
    if isinstance(pdu, AckPdu):
        return "ack_eof" if pdu.directive_code_of_acked_pdu == DirectiveType.EOF_PDU \
            else "ack_fin"
    return {MetadataPdu: "metadata", EofPdu: "eof", NakPdu: "nak",
            FinishedPdu: "finished"}.get(type(pdu), "other")


Rule = Callable[[str, str, int, bytes], bool]


@dataclass
class Link:
    """Two entities, a one-way delay, and rules that drop or delay chosen PDUs.

    A rule gets (direction "up" | "down", kind, index of this kind in this direction, octets).
    """

    cls: int = 2
    size: int = 4000
    max_pdu: int = 128
    delay: float = 0.05
    seed: int = 1
    cfg: dict = field(default_factory=dict)
    drop: Rule = lambda d, k, n, b: False
    lag: Callable[[str, str, int], float] = lambda d, k, n: 0.0
    loss: float = 0.0
    dest_store: MemoryFilestore | None = None

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.rng = rng
        self.data = bytes(rng.randrange(256) for _ in range(self.size))
        cfg = {"ack_timer_s": 1.0, "nak_timer_s": 1.0, "check_timer_s": 1.0,
               "closure_timer_s": 5.0, **self.cfg}
        self.a = CfdpEntity(EntityConfig(1, max_pdu_length=self.max_pdu, **cfg),
                            MemoryFilestore({"f.bin": self.data}), peers=[2])
        self.b = CfdpEntity(EntityConfig(2, max_pdu_length=self.max_pdu, **cfg),
                            self.dest_store or MemoryFilestore(), peers=[1])
        self.t = 0.0
        self.flight: list[tuple[float, int, str, bytes]] = []
        self.sent: list[tuple[float, str, str, int]] = []  # (t, direction, kind, octets)
        self.dropped: list[tuple[float, str, str, bytes]] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        self.events: list[object] = []
        self._seq = 0

    def put(self) -> None:
        self.a.put(2, "f.bin", "g.bin", self.cls, now=self.t)

    def _send(self, direction: str, data: bytes) -> None:
        k = kind(data)
        n = self.counts[(direction, k)]
        self.counts[(direction, k)] += 1
        self.sent.append((self.t, direction, k, len(data)))
        if self.drop(direction, k, n, data) or (self.loss and self.rng.random() < self.loss):
            self.dropped.append((self.t, direction, k, data))
            return
        self._seq += 1
        at = self.t + self.delay + self.lag(direction, k, n)
        heapq.heappush(self.flight, (at, self._seq, direction, data))

    def run(self, until: float = 600.0) -> Link:
        ents = {"up": (self.a, self.b), "down": (self.b, self.a)}
        while self.t <= until:
            for direction, (src, _dst) in ents.items():
                for pdu in src.pull(self.t, limit=10**6):
                    self._send(direction, pdu)
            while self.flight and self.flight[0][0] <= self.t:
                _, _, direction, data = heapq.heappop(self.flight)
                ents[direction][1].receive(data, self.t)
            for e in (self.a, self.b):
                self.events += e.events()
            if any(e.has_output() for e in (self.a, self.b)):
                continue
            times = [self.flight[0][0]] if self.flight else []
            times += [d for d in (self.a.next_deadline(), self.b.next_deadline()) if d]
            if not times or min(times) > until:
                break
            self.t = max(self.t, min(times))
            for e in (self.a, self.b):
                d = e.next_deadline()
                if d is not None and d <= self.t:
                    e.on_timer(self.t)
        return self

    def finished(self, role: str) -> list[TransactionFinished]:
        return [e for e in self.events if isinstance(e, TransactionFinished) and e.role == role]

    def faults(self) -> list[Fault]:
        return [e for e in self.events if isinstance(e, Fault)]

    @property
    def stored(self) -> bytes | None:
        return self.b.filestore.get("g.bin")

    def kinds_sent(self, direction: str) -> Counter[str]:
        return Counter(k for _, d, k, _ in self.sent if d == direction)


def delivered_ok(link: Link) -> bool:
    fin = link.finished("dest")
    return len(fin) == 1 and fin[0].ok and link.stored == link.data


# -- plain transfers ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [1, 2])
def test_clean_transfer_is_byte_exact(cls: int) -> None:
    link = Link(cls=cls, size=5000)
    link.put()
    link.run()
    assert delivered_ok(link)
    assert [f.ok for f in link.finished("source")] == [True]
    assert link.a.counters["retransmitted_octets"] == 0
    assert link.a.idle and link.b.idle


def test_class2_recovers_random_losses_both_ways() -> None:
    link = Link(cls=2, size=20000, loss=0.2, seed=7)
    link.put()
    link.run(until=3000)
    assert delivered_ok(link)
    assert link.a.counters["retransmitted_octets"] > 0
    assert not link.faults()


def test_class1_on_a_lossy_link_reports_the_loss() -> None:
    link = Link(cls=1, size=8000, drop=lambda d, k, n, b: d == "up" and k == "fd" and n == 5)
    link.put()
    link.run()
    fin = link.finished("dest")
    assert len(fin) == 1 and not fin[0].ok
    assert fin[0].condition == ConditionCode.CHECK_LIMIT_REACHED


# -- cfdp-py's weak points, and the workarounds ----------------------------------------------------


def test_duplicate_eof_is_acknowledged_while_data_is_missing() -> None:
    """The ACK(EOF) is lost and the receiver's first NAKs too: when the sender repeats its
    EOF the receiver is in the deferred NAK procedure, where cfdp-py ignores EOFs. The entity
    acknowledges the repeated EOF, so the sender (positive-ACK limit 2) does not cancel."""
    def drop(d: str, k: str, n: int, b: bytes) -> bool:
        return (d == "up" and k == "fd" and n == 3) or (d == "down" and k == "ack_eof"
                                                          and n == 0) or \
            (d == "down" and k == "nak" and n < 2)

    link = Link(cls=2, size=3000, drop=drop, cfg={"ack_limit": 2, "nak_timer_s": 3.0})
    link.put()
    link.run()
    assert delivered_ok(link)
    assert link.b.counters["eof_reacked"] >= 1
    assert link.kinds_sent("up")["eof"] >= 2
    assert not [f for f in link.faults() if f.condition == ConditionCode.POSITIVE_ACK_LIMIT_REACHED]
    assert [f.ok for f in link.finished("source")] == [True]


def test_bare_cfdppy_ignores_a_repeated_eof_in_the_deferred_procedure() -> None:
    """What the workaround is for: cfdp-py's receiver sends no ACK for a repeated EOF once
    it waits for missing data."""
    link = Link(cls=2, size=1000, max_pdu=128)
    store = MemoryFilestore()
    dest = DestHandler(LocalEntityConfig(ByteFieldU16(2), IndicationConfig(),
                                         link.b._faults), link.b.user, link.b._remotes,
                       link.b.source.check_timer_provider)
    dest.user.vfs = store
    link.put()
    pdus = link.a.pull(0.0, limit=100)
    eof = next(p for p in pdus if kind(p) == "eof")
    for p in pdus:
        if kind(p) == "fd" and PduFactory.from_raw(p).offset == 0:
            continue  # lose the first segment
        dest.state_machine(PduFactory.from_raw(p))
        while dest.get_next_packet() is not None:
            pass
    assert dest.step == DestStep.WAITING_FOR_MISSING_DATA
    dest.state_machine(PduFactory.from_raw(eof))
    out = []
    while (h := dest.get_next_packet()) is not None:
        out.append(h.pdu)
    assert not [p for p in out if isinstance(p, AckPdu)]


def test_finished_repeated_after_the_sender_went_idle_is_acknowledged() -> None:
    link = Link(cls=2, size=2000, drop=lambda d, k, n, b: d == "up" and k == "ack_fin" and n == 0)
    link.put()
    link.run()
    assert delivered_ok(link)
    assert link.a.counters["finished_reacked"] == 1
    assert link.kinds_sent("down")["finished"] == 2
    assert link.b.idle and not link.faults()


def test_finished_while_waiting_for_the_eof_ack_implies_it() -> None:
    link = Link(cls=2, size=2000, drop=lambda d, k, n, b: d == "down" and k == "ack_eof")
    link.put()
    link.run()
    assert delivered_ok(link)
    assert link.a.counters["eof_ack_implied"] == 1
    assert [f.ok for f in link.finished("source")] == [True]


def test_metadata_lost_and_resent_after_the_eof_completes() -> None:
    """The Metadata PDU is lost; the receiver learns of the file from its EOF and NAKs the
    Metadata and every segment (deferred procedure). cfdp-py puts a receiver that gets the
    Metadata then back into its file-data step, where it never completes; the entity keeps
    it in the deferred procedure."""
    link = Link(cls=2, size=3000, cfg={"immediate_nak": False},
                drop=lambda d, k, n, b: d == "up" and k == "metadata" and n == 0)
    link.put()
    link.run(until=120)
    assert delivered_ok(link)
    assert link.kinds_sent("up")["metadata"] == 2
    assert link.t < 30  # no NAK-limit crawl


def test_bare_cfdppy_stalls_on_metadata_after_the_eof() -> None:
    link = Link(cls=2, size=1000)
    link.put()
    pdus = link.a.pull(0.0, limit=100)
    dest = DestHandler(LocalEntityConfig(ByteFieldU16(2), IndicationConfig(),
                                         link.b._faults), link.b.user, link.b._remotes,
                       link.b.source.check_timer_provider)
    metadata = next(p for p in pdus if kind(p) == "metadata")
    for p in pdus:
        if p is not metadata:
            dest.state_machine(PduFactory.from_raw(p))
            while dest.get_next_packet() is not None:
                pass
    assert dest.step == DestStep.WAITING_FOR_METADATA
    dest.state_machine(PduFactory.from_raw(metadata))
    assert dest.step == DestStep.RECEIVING_FILE_DATA  # left the deferred procedure


def test_late_duplicate_metadata_does_not_truncate_the_stored_file() -> None:
    link = Link(cls=2, size=3000)
    link.put()
    first: list[bytes] = []
    link.drop = lambda d, k, n, b: bool(k == "metadata" and first.append(b)) and False
    link.run()
    assert delivered_ok(link)
    link.b.receive(first[0], link.t + 100)  # a copy that took the long way
    for p in link.b.pull(link.t + 100, limit=10):
        link.a.receive(p, link.t + 100)
    assert link.stored == link.data
    assert link.b.ignored["stale: transaction ended"] == 1
    assert link.b.dest.step == DestStep.IDLE


def test_nak_sequence_fits_max_pdu_length_and_covers_every_gap() -> None:
    """Every other segment lost, NAKs only after the EOF: the NAK sequence needs many PDUs
    of at most max_pdu_length octets; together they ask for every missing segment."""
    link = Link(cls=2, size=6000, max_pdu=64, cfg={"immediate_nak": False},
                drop=lambda d, k, n, b: d == "up" and k == "fd" and n % 2 == 1 and n < 100)
    link.put()
    link.run()
    assert delivered_ok(link)
    naks = [s for s in link.sent if s[2] == "nak"]
    assert len(naks) > 3
    assert max(s[3] for s in naks) <= 64
    assert link.a.counters["retransmitted_octets"] > 0


def test_nak_sequence_unit() -> None:
    conf = PduConfig(source_entity_id=ByteFieldU16(1), dest_entity_id=ByteFieldU16(2),
                     transaction_seq_num=ByteFieldU16(9),
                     trans_mode=TransmissionMode.ACKNOWLEDGED)
    requests = [(0, 0)] + [(i * 100, i * 100 + 50) for i in range(1, 60)]
    pdus = nak_sequence(conf, 0, 6000, requests, 80)
    assert len(pdus) > 1
    assert all(len(p.pack()) <= 80 for p in pdus)
    assert [r for p in pdus for r in PduFactory.from_raw(p.pack()).segment_requests] == requests
    assert pdus[0].start_of_scope == 0 and pdus[-1].end_of_scope == 6000
    for before, after in itertools.pairwise(pdus):
        assert after.start_of_scope == before.end_of_scope
    with pytest.raises(ValueError):
        nak_sequence(conf, 0, 10, [(0, 5)], 20)


def test_rangeset_and_trimming() -> None:
    have = RangeSet([(0, 10), (20, 30)])
    assert have.add(5, 25) == 10 and list(have) == [(0, 30)]
    have.add(40, 50)
    assert have.missing(0, 60) == [(30, 40), (50, 60)]
    assert have.covered(25, 45) == 10
    assert trim_requests([(0, 0), (25, 45)], have, metadata_received=True) == [(30, 40)]
    assert trim_requests([(0, 0)], have, metadata_received=False) == [(0, 0)]


def reorder_link(hold: float) -> Link:
    # every 5th file segment arrives 0.3 s late: behind the next ones (and the EOF)
    return Link(cls=2, size=12000, cfg={"nak_hold_s": hold},
                lag=lambda d, k, n: 0.3 if d == "up" and k == "fd" and n % 5 == 4 else 0.0)


def test_reordering_without_the_nak_hold_causes_spurious_retransmissions() -> None:
    link = reorder_link(0.0)
    link.put()
    link.run()
    assert delivered_ok(link)
    assert link.a.counters["retransmitted_octets"] > 0


def test_reordering_with_the_nak_hold_sends_nothing_twice() -> None:
    link = reorder_link(0.5)
    link.put()
    link.run()
    assert delivered_ok(link)
    assert link.a.counters["retransmitted_octets"] == 0
    assert link.b.counters["naks_suppressed"] > 0
    assert link.kinds_sent("down")["nak"] == 0


def test_each_transaction_has_its_own_lost_segment_list() -> None:
    # cfdp-py's receiver parameters share one list (a dataclass default instance) ...
    assert _AckedModeParams().lost_seg_tracker is _AckedModeParams().lost_seg_tracker
    # ... the entity gives each transaction its own: a transfer that ended with data
    # missing (cancelled) leaves nothing behind for the next one, or another receiver.
    link = Link(cls=2, size=3000, drop=lambda d, k, n, b: d == "up" and k == "fd" and n == 2)
    link.put()
    link.run(until=0.06)  # the gap is seen, its retransmission not yet here
    tracker = link.b.dest._params.acked_params.lost_seg_tracker
    assert tracker.lost_segments and tracker is not _AckedModeParams().lost_seg_tracker
    other = Link(cls=2, size=3000, seed=3)
    other.put()
    other.run()
    assert delivered_ok(other)


def test_suspension_freezes_the_timers_and_the_output() -> None:
    link = Link(cls=2, size=2000, drop=lambda d, k, n, b: d == "down" and n == 0
                and k in ("ack_eof", "finished"), cfg={"ack_timer_s": 10.0})
    link.put()
    link.run(until=1.0)  # EOF sent at 0, its ACK lost: the sender waits for it
    before = link.a.next_deadline()
    assert before == pytest.approx(10.0)
    link.a.suspend(2.0)
    assert link.a.next_deadline() is None and link.a.pull(500.0) == []
    link.a.on_timer(5000.0)  # nothing happens while suspended
    link.a.resume(6000.0)
    after = link.a.next_deadline()
    assert after == pytest.approx(before + 5998.0)
    link.t = 6000.0
    link.run(until=7000)
    assert delivered_ok(link) and not link.faults()


def test_virtual_countdown_follows_the_entity_clock() -> None:
    clock = EntityClock(100.0)
    cd = VirtualCountdown.create(clock, 5.0)
    assert not cd.timed_out()
    clock.freeze(103.0)
    clock.tick(1000.0)
    assert not cd.timed_out() and cd.remaining_time().total_seconds() == pytest.approx(2.0)
    clock.thaw(1000.0)
    assert clock.to_virtual(cd.deadline) == pytest.approx(1002.0)
    clock.tick(1002.0)
    assert cd.timed_out()
    cd.reset()
    assert not cd.timed_out()


def test_bad_pdus_are_counted_not_raised() -> None:
    link = Link()
    link.b.receive(b"", 0.0)
    link.b.receive(b"\x07\xff\xff\xff", 0.0)
    link.b.receive(bytes(range(40)), 0.0)
    other = CfdpEntity(EntityConfig(5, max_pdu_length=128), MemoryFilestore({"x": b"123"}),
                       peers=[2, 7])
    other.put(7, "x", "y", 2, now=0.0)
    for p in other.pull(0.0, limit=10):
        link.b.receive(p, 0.0)  # addressed to entity 7
    assert sum(link.b.ignored.values()) >= 4
    assert link.b.idle


def test_proxy_put_sends_the_named_file_back() -> None:
    link = Link(cls=2, size=10)
    link.b.filestore.put("answers/a.txt", b"x" * 2500)
    link.a.request_file(2, "answers/a.txt", "down/a.txt", TransferClass.ACKNOWLEDGED, now=0.0)
    link.run()
    assert link.a.filestore.get("down/a.txt") == b"x" * 2500
    assert [f.ok for f in link.finished("dest") if f.file == "down/a.txt"] == [True]


def test_file_checksums_match_cfdppy() -> None:
    from cfdppy.filestore import NativeFilestore

    data = bytes(range(256)) * 7 + b"xyz"
    path = Path("/tmp") / f"cfdp-cs-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    try:
        native = NativeFilestore()
        for kind_ in (ChecksumType.CRC_32, ChecksumType.CRC_32C, ChecksumType.MODULAR):
            assert file_checksum(kind_, data) == native.calculate_checksum(kind_, path,
                                                                           len(data))
    finally:
        path.unlink()


# -- model upload: verify, then swap --------------------------------------------------------------


class FlakyMemory(MemoryFilestore):
    """Onboard storage that flips one bit of the n-th write."""

    def __init__(self, bad_write: int) -> None:
        super().__init__()
        self.writes = 0
        self.bad_write = bad_write

    def write_data(self, file: Path, data: bytes, offset: int | None) -> None:
        self.writes += 1
        if self.writes == self.bad_write:
            data = bytes([data[0] ^ 0x10]) + data[1:]
        super().write_data(file, data, offset)


def model_upload(link: Link, registry: ModelRegistry, manifest: Manifest | None = None) -> None:
    man = manifest or Manifest.of(link.data, kind="model", name="new.gguf")
    link.a.put(2, "f.bin", "g.bin", 2, messages=[man.encode()], now=0.0)
    link.run()
    for fin in link.finished("dest"):
        registry.install("g.bin", link.b.filestore.get("g.bin"), Manifest.find(fin.messages),
                         transfer_ok=fin.ok)


def factory() -> ModelRegistry:
    return ModelRegistry(ModelInfo("old.gguf", "0" * 64, 10, "models/old.gguf", 1))


def test_verified_model_upload_is_swapped_in() -> None:
    registry = factory()
    swapped = []
    registry.on_swap = lambda info, data: swapped.append((info.name, len(data)))
    link = Link(cls=2, size=5000)
    model_upload(link, registry)
    assert registry.active is not None and registry.active.name == "new.gguf"
    assert registry.active.sha256 == hashlib.sha256(link.data).hexdigest()
    assert registry.history[0].name == "old.gguf" and swapped == [("new.gguf", 5000)]


def test_corrupted_model_upload_is_not_swapped_in() -> None:
    registry = factory()
    link = Link(cls=2, size=5000, dest_store=FlakyMemory(bad_write=7))
    model_upload(link, registry)
    fin = link.finished("dest")[0]
    assert fin.condition == ConditionCode.FILE_CHECKSUM_FAILURE
    assert link.stored != link.data
    assert registry.active is not None and registry.active.name == "old.gguf"
    assert registry.rejected and not registry.rejected[0].swapped


def test_truncated_model_upload_is_not_swapped_in() -> None:
    registry = factory()
    link = Link(cls=2, size=8000, drop=lambda d, k, n, b: d == "up" and k == "fd" and n >= 30)
    link.a.put(2, "f.bin", "g.bin", 2, now=0.0)
    link.run(until=0.5)
    assert link.a.cancel(0.5)  # the operator gives up half way
    link.run(until=60)
    fin = link.finished("dest")
    assert fin and not fin[0].ok
    stored = link.stored or b""
    assert len(stored) < link.size
    result = registry.install("g.bin", stored, Manifest.of(link.data, kind="model"),
                              transfer_ok=fin[0].ok)
    assert not result.swapped and registry.active.name == "old.gguf"
    # even if CFDP had said complete, the size and digest would refuse it
    result = registry.install("g.bin", stored, Manifest.of(link.data), transfer_ok=True)
    assert not result.swapped and "size" in result.reason


def test_model_with_a_wrong_digest_is_not_swapped_in() -> None:
    registry = factory()
    link = Link(cls=2, size=3000)
    model_upload(link, registry, Manifest("ab" * 32, 3000, "model", "new.gguf"))
    assert delivered_ok(link)  # CFDP delivered the octets ...
    assert registry.active.name == "old.gguf"  # ... but not the file the operator meant
    assert registry.rejected[0].reason == "SHA-256 mismatch"


def test_manifest_round_trip_and_garbage() -> None:
    m = Manifest.of(b"abc", kind="model", name="x")
    assert Manifest.decode(m.encode()) == m
    assert Manifest.find([b"other", m.encode()]) == m
    assert Manifest.decode(b"linkstack-manifest:{nope") is None
    assert Manifest.decode(b"linkstack-manifest:{\"sha256\": \"12\", \"size\": 1}") is None


def test_transmission_mode_of_the_classes() -> None:
    assert TransferClass(1).mode == TransmissionMode.UNACKNOWLEDGED
    assert TransferClass(2).mode == TransmissionMode.ACKNOWLEDGED
    with pytest.raises(ValueError):
        TransferClass(3)
    assert PutRequest  # the cfdp-py API the entity builds on


def renak_link(guard: float) -> Link:
    # one segment lost; the immediate NAK and the NAK sequence after the EOF both ask for it
    # (the second arrives after the first was answered)
    return Link(cls=2, size=3000, cfg={"renak_guard_s": guard},
                drop=lambda d, k, n, b: d == "up" and k == "fd" and n == 3,
                lag=lambda d, k, n: 0.08 if d == "down" and k == "nak" and n >= 1 else 0.0)


def test_a_gap_just_nakked_is_not_nakked_again_by_the_eof_sequence() -> None:
    segment = 128 - 14  # PDU header 10 + offset 4
    loose = renak_link(0.0)
    loose.put()
    loose.run()
    assert delivered_ok(loose)
    assert loose.a.counters["retransmitted_octets"] == 2 * segment
    guarded = renak_link(0.5)
    guarded.put()
    guarded.run()
    assert delivered_ok(guarded)
    assert guarded.a.counters["retransmitted_octets"] == segment


# -- faults: a full store, an unknown entity, a cancel -------------------------------------------

@pytest.mark.parametrize("cls", [1, 2])
def test_a_file_the_store_has_no_room_for_is_refused_at_its_metadata(cls: int) -> None:
    from linkstack.cfdp import StoreFull

    store = MemoryFilestore({"models/old.gguf": b"m" * 1000}, capacity=3000)
    link = Link(cls=cls, size=4000, dest_store=store)
    link.put()
    link.run(60)
    full = [e for e in link.events if isinstance(e, StoreFull)]
    assert len(full) == 1 and (full[0].size, full[0].free) == (4000, 2000)
    assert [f.condition for f in link.faults()] == [ConditionCode.FILESTORE_REJECTION]
    for role in ("dest", "source"):  # the sender hears why (Finished PDU)
        (fin,) = link.finished(role)
        assert fin.condition == ConditionCode.FILESTORE_REJECTION and not fin.ok
    assert store.names() == ["models/old.gguf"]  # nothing half-written, the old file stays
    assert link.a.idle and link.b.idle
    with pytest.raises(PermissionError):  # the store itself refuses to grow past capacity
        store.write_data(Path("models/old.gguf"), b"x" * 2001, 1000)


def test_put_to_an_unknown_entity_is_refused_without_sending() -> None:
    from linkstack.cfdp import PutRefused

    link = Link()
    link.a.put(7, "f.bin", "g.bin", 2, now=0.0)
    link.run(10)
    (refused,) = link.events
    assert isinstance(refused, PutRefused) and refused.reason == "unknown_entity"
    assert "7" in refused.detail
    assert link.sent == [] and link.a.idle
    assert link.a.knows(2) and not link.a.knows(7)


def test_cancel_from_the_sender_ends_both_sides_with_cancel_request_received() -> None:
    # one file data PDU lost: the receiver is waiting for it when the cancel comes
    link = Link(cls=2, size=20_000, delay=0.5,
                drop=lambda d, k, n, b: d == "up" and k == "fd" and n == 3)
    link.put()
    link.run(0.6)
    assert not link.finished("dest")
    assert link.a.cancel(link.t)
    link.run(60)
    for role in ("dest", "source"):
        (fin,) = link.finished(role)
        assert fin.condition == ConditionCode.CANCEL_REQUEST_RECEIVED and not fin.ok
    assert link.a.idle and link.b.idle


def test_an_eof_cancel_that_starts_the_transaction_at_the_receiver_ends_it() -> None:
    """Found by the Metadata property test below: the Metadata, the data and the first two
    EOFs are lost; the sender reaches its positive-ACK limit and cancels; its EOF (cancel) is
    the first PDU the receiver gets. cfdp-py acknowledged it and stalled before its Finished
    PDU (no timer runs in that step); both ends now finish with the sender's condition."""
    link = Link(cls=2, size=1000, cfg={"ack_limit": 2},
                drop=lambda d, k, n, b: d == "up" and (k in ("metadata", "fd")
                                                       or (k == "eof" and n < 2)))
    link.put()
    link.run(until=120)
    (dest,) = link.finished("dest")
    assert dest.condition == ConditionCode.POSITIVE_ACK_LIMIT_REACHED and not dest.ok
    (src,) = link.finished("source")
    assert src.condition == ConditionCode.POSITIVE_ACK_LIMIT_REACHED
    assert link.kinds_sent("down")["finished"] >= 1
    assert link.a.idle and link.b.idle


@pytest.mark.parametrize("cls", [1, 2])
def test_a_receiver_whose_sender_gave_up_ends_with_inactivity_detected(cls: int) -> None:
    """Found by the Metadata property test below: the Metadata gets through, every EOF is lost
    (the cancel too); the sender gives up. cfdp-py's receiver waited for data for ever (and
    refused every later transaction as busy); it now declares Inactivity Detected after the
    inactivity limit of entity time, and the next transaction is received."""
    link = Link(cls=cls, size=1000, cfg={"ack_limit": 2, "inactivity_timer_s": 7.0},
                drop=lambda d, k, n, b: d == "up" and (k == "eof" or (k == "fd" and n > 2)))
    link.put()
    link.run(until=300)
    (dest,) = link.finished("dest")
    assert dest.condition == ConditionCode.INACTIVITY_DETECTED and not dest.ok
    assert [f.condition for f in link.faults() if f.role == "dest"] == \
        [ConditionCode.INACTIVITY_DETECTED]
    last_data = max(t for t, d, k, _ in link.sent if d == "up" and k == "fd")
    assert 7.0 <= dest.now - last_data < 7.2
    assert link.a.idle and link.b.idle
    link.drop = lambda d, k, n, b: False
    link.put()
    link.run(until=link.t + 300)
    assert link.finished("dest")[-1].ok and link.stored == link.data


def test_the_inactivity_limit_stops_while_suspended() -> None:
    cfg = EntityConfig(2, max_pdu_length=128, inactivity_timer_s=5.0)
    assert cfg.inactivity_s == 5.0
    assert EntityConfig(2, ack_timer_s=3.0, ack_limit=4, closure_timer_s=5.0).inactivity_s == 15
    with pytest.raises(ConfigError, match="inactivity_timer_s"):
        EntityConfig(2, inactivity_timer_s=0.0)
    link = Link(cls=2, size=1000, cfg={"inactivity_timer_s": 5.0},
                drop=lambda d, k, n, b: d == "up" and k == "eof")
    link.put()
    pdus = link.a.pull(0.0, limit=100)
    for p in pdus:
        if kind(p) != "eof":
            link.b.receive(p, 0.0)
    link.b.suspend(1.0)
    assert link.b.next_deadline() is None
    link.b.resume(101.0)  # 100 s of gap: the limit is 1 s spent before it + 4 s after
    assert link.b.next_deadline() == pytest.approx(105.0)
    link.b.on_timer(104.9)
    assert not [e for e in link.b.events() if isinstance(e, Fault)]
    link.b.on_timer(105.0)
    (fault,) = [e for e in link.b.events() if isinstance(e, Fault)]
    assert fault.condition == ConditionCode.INACTIVITY_DETECTED


# -- property: class 2 is byte-exact under loss, duplication and reordering ----------------------

@dataclass
class RoughLink(Link):
    """A link that also duplicates PDUs: a copy of each, with probability ``dup``, arrives
    up to ``jitter`` (at least 10 ms) after the original's send time plus the delay."""

    dup: float = 0.0
    jitter: float = 0.0
    copies: int = 0

    def _send(self, direction: str, data: bytes) -> None:
        super()._send(direction, data)
        if self.dup and self.rng.random() < self.dup:
            self._seq += 1
            self.copies += 1
            at = self.t + self.delay + self.rng.random() * max(self.jitter, 0.01)
            heapq.heappush(self.flight, (at, self._seq, direction, data))


def _rough_trial(size: int, max_pdu: int, loss_up: float, loss_down: float, dup: float,
                 jitter: float, hold: bool, seed: int, *, metadata_first: bool,
                 metadata_lost: int = 0, metadata_lag: float = 0.0, limit: int = 40,
                 cfg: dict | None = None) -> RoughLink:
    """A class 2 transfer over a RoughLink; with ``metadata_first`` the Metadata PDU is never
    lost and never delayed, so it always reaches the receiver before any file data. Otherwise
    the first ``metadata_lost`` Metadata PDUs are lost and each one sent is ``metadata_lag``
    seconds late, besides the link's own loss and jitter."""
    rates = {"up": loss_up, "down": loss_down}
    rng = random.Random(seed ^ 0x5EED)

    def drop(d: str, k: str, n: int, b: bytes) -> bool:
        lost = rng.random() < rates[d]
        if k == "metadata" and not metadata_first and n < metadata_lost:
            return True
        return lost and not (metadata_first and k == "metadata")

    def lag(d: str, k: str, n: int) -> float:
        extra = rng.random() * jitter  # reordering
        if k != "metadata":
            return extra
        return 0.0 if metadata_first else extra + metadata_lag

    link = RoughLink(cls=2, size=size, max_pdu=max_pdu, seed=seed, dup=dup, jitter=jitter,
                     drop=drop, lag=lag,
                     cfg={"ack_limit": limit, "nak_limit": limit,
                          "nak_hold_s": jitter if hold else 0.0, **(cfg or {})})
    link.put()
    link.run(until=3000)
    return link


@settings(max_examples=12, deadline=None)
@given(size=st.integers(0, 6000), max_pdu=st.sampled_from([64, 128, 300]),
       loss_up=st.floats(0, 0.3), loss_down=st.floats(0, 0.3), dup=st.floats(0, 0.3),
       jitter=st.sampled_from([0.0, 0.02, 0.2]), hold=st.booleans(),
       seed=st.integers(0, 2**16))
def test_class2_is_byte_exact_under_loss_duplication_and_reordering(
        size: int, max_pdu: int, loss_up: float, loss_down: float, dup: float, jitter: float,
        hold: bool, seed: int) -> None:
    # Every other PDU may be lost, duplicated or reordered; the Metadata PDU arrives first
    # (where it does not: the Metadata tests below).
    link = _rough_trial(size, max_pdu, loss_up, loss_down, dup, jitter, hold, seed,
                        metadata_first=True)
    assert delivered_ok(link), (link.finished("dest"), link.faults())
    (src_fin,) = link.finished("source")
    assert src_fin.ok
    assert link.copies == 0 or link.b.counters["pdus_received"] > 0


def test_class2_delivers_when_file_data_overtakes_a_lost_metadata() -> None:
    """Regression (found by searching the property above without ``metadata_first``): the
    Metadata PDU is lost and file data comes first. cfdp-py listed each early segment as lost
    ``(0, end)``; the last one stayed "lost" after it came again, the wrapper trimmed it from
    every NAK, and the transfer ended with NAK Limit Reached."""
    link = _rough_trial(4515, 64, 0.21234288644938484, 0.09458316510466497,
                        0.06889977048237167, 0.02, True, 14146, metadata_first=False)
    assert delivered_ok(link), (link.finished("dest"), link.faults())
    assert link.b.counters["early_data_stored_octets"] > 0


# -- file data before its Metadata PDU (§4.6.4.3.2: the Metadata is NAKed with a 0-0 request) --

def late_metadata_link(*, eof_lag: float, early_limit: int = 1 << 24,
                       drop_fd: int | None = None, hold: float = 0.5) -> Link:
    """Every file data PDU overtakes the Metadata PDU (0.3 s late); the EOF comes ``eof_lag``
    late: before the Metadata (0.0) or after it (0.6)."""
    def lag(d: str, k: str, n: int) -> float:
        return {"metadata": 0.3, "eof": eof_lag}.get(k, 0.0) if d == "up" else 0.0

    return Link(cls=2, size=4000, max_pdu=128, lag=lag,
                drop=lambda d, k, n, b: d == "up" and k == "fd" and n == drop_fd,
                cfg={"nak_hold_s": hold, "early_data_octets": early_limit})



@pytest.mark.parametrize("eof_lag", [0.0, 0.6], ids=["eof-first", "metadata-first"])
def test_file_data_before_the_metadata_is_kept_and_stored_once_it_comes(eof_lag: float) -> None:
    link = late_metadata_link(eof_lag=eof_lag)
    link.put()
    link.run()
    assert delivered_ok(link)
    assert link.a.counters["retransmitted_octets"] == 0  # nothing was sent twice
    assert link.kinds_sent("up")["metadata"] == 1  # the held NAKs of the Metadata were dropped
    assert link.b.counters["early_data_stored_octets"] == link.size
    assert link.t < 2


@pytest.mark.parametrize("eof_lag", [0.0, 0.6], ids=["eof-first", "metadata-first"])
def test_file_data_beyond_the_early_limit_is_asked_for_again(eof_lag: float) -> None:
    link = late_metadata_link(eof_lag=eof_lag, early_limit=1000)
    link.put()
    link.run()
    assert delivered_ok(link)
    kept = link.b.counters["early_data_kept_octets"]
    assert 0 < kept <= 1000
    dropped = link.b.counters["early_data_dropped_octets"]
    assert kept + dropped == link.size
    assert link.a.counters["retransmitted_octets"] == dropped


def test_before_the_metadata_each_gap_and_the_metadata_are_nakked_once() -> None:
    """cfdp-py's NAK for each file data PDU before the Metadata asks for the Metadata and
    all of ``[0, end)``; sent as they are, one lost segment is asked for (and re-sent) once per
    later PDU, and the Metadata too."""
    link = late_metadata_link(eof_lag=0.6, drop_fd=3, hold=0.0)
    link.put()
    link.run()
    assert delivered_ok(link)
    (lost,) = [PduFactory.from_raw(b) for _, d, k, b in link.dropped if k == "fd"]
    assert link.a.counters["retransmitted_octets"] == len(lost.file_data)  # once
    assert link.kinds_sent("up")["metadata"] == 2  # sent, then asked for once
    assert link.kinds_sent("down")["nak"] == 2


FAULTS = {ConditionCode.NAK_LIMIT_REACHED, ConditionCode.POSITIVE_ACK_LIMIT_REACHED,
          ConditionCode.CHECK_LIMIT_REACHED, ConditionCode.INACTIVITY_DETECTED}


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 5000), max_pdu=st.sampled_from([64, 128, 300]),
       loss_up=st.floats(0, 0.3), loss_down=st.floats(0, 0.3), dup=st.floats(0, 0.2),
       jitter=st.sampled_from([0.0, 0.02, 0.2]), hold=st.booleans(),
       seed=st.integers(0, 2**16), metadata_lost=st.integers(0, 3),
       metadata_lag=st.sampled_from([0.0, 0.01, 0.1, 0.5, 3.0]), limit=st.sampled_from([2, 40]),
       immediate=st.booleans(), early_limit=st.sampled_from([0, 300, 1 << 24]))
def test_class2_delivers_or_names_its_fault_wherever_the_metadata_comes(
        size: int, max_pdu: int, loss_up: float, loss_down: float, dup: float, jitter: float,
        hold: bool, seed: int, metadata_lost: int, metadata_lag: float, limit: int,
        immediate: bool, early_limit: int) -> None:
    """The Metadata PDU lost 0-3 times, late by up to 3 s (behind file data, the EOF, the
    NAKed data), on a link that also loses, duplicates and reorders: the transfer ends at both
    entities, each with the exact file delivered or a named fault (never a wrong file reported
    complete, never a sender told of a delivery that did not happen; a sender that reaches its
    positive ACK limit on its EOF (cancel) too abandons the transaction, with no Finished).
    With limits of 40 (a NAK round trip fails with p <= 0.51 here: 40 in a row, ~2e-12) it
    is always the exact file."""
    link = _rough_trial(size, max_pdu, loss_up, loss_down, dup, jitter, hold, seed,
                        metadata_first=False, metadata_lost=metadata_lost,
                        metadata_lag=metadata_lag, limit=limit,
                        cfg={"immediate_nak": immediate, "early_data_octets": early_limit})
    assert link.a.idle and link.b.idle, (link.a.status(), link.b.status())
    (dest,) = link.finished("dest")
    ends = link.finished("source")
    assert len(ends) <= 1
    if not ends:  # abandoned: the positive ACK limit reached again on its EOF (cancel)
        src_faults = [f.condition for f in link.faults() if f.role == "source"]
        assert src_faults and set(src_faults) <= FAULTS and not dest.ok
    for fin in (dest, *ends):  # each end: done, or a named fault (§4.8) it declared or got
        assert fin.ok or fin.condition in FAULTS, fin
    if dest.ok:
        assert link.stored == link.data
    if ends and ends[0].ok:  # the receiver's Finished PDU said the file was delivered: it was
        assert dest.ok
    if not (dest.ok and ends and ends[0].ok):
        assert link.faults()
    if limit == 40:
        assert delivered_ok(link), (dest, link.faults())

