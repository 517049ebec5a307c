"""One CFDP entity (CCSDS 727.0-B-5), sans-IO: PDUs and ``now`` in, PDUs and events out.

The protocol machines are cfdp-py's (``cfdppy.handler.SourceHandler`` and ``DestHandler``,
the version pinned in pyproject.toml): Copy File procedures in class 1 (unacknowledged) and
class 2 (acknowledged: NAKs, positive acknowledgement of EOF and Finished). :class:`CfdpEntity`
wraps one source and one destination handler with the shape every engine of linkstack has
(specs/architecture.md principle 1): :meth:`~CfdpEntity.receive` a PDU, :meth:`~CfdpEntity.pull`
the PDUs to send (as many as the link below can take: this is the flow control),
:meth:`~CfdpEntity.next_deadline` / :meth:`~CfdpEntity.on_timer`, and
:meth:`~CfdpEntity.suspend` / :meth:`~CfdpEntity.resume` at loss and acquisition of signal.

What the wrapper adds to cfdp-py 0.7.0, each covered by a test in tests/test_cfdp_engine.py:

* **Virtual time.** cfdp-py's timers read the wall clock; they are adopted onto the entity's
  clock (:mod:`linkstack.cfdp.timers`), which stops while the entity is suspended, so a
  transaction keeps its timers' remaining time across a contact gap.
* **Suspend / resume** (§4.6.7; cfdp-py leaves ``_notice_of_suspension`` empty): a suspended
  entity sends nothing and its timers stand still; PDUs that still arrive are taken.
* **Duplicate EOF** (§4.7.2: every EOF is acknowledged). Once cfdp-py's receiver has left the
  file-data step it ignores an EOF, so a sender whose ACK(EOF) was lost repeats its EOF until
  the positive-ACK limit and cancels a transfer that was nearly done. The wrapper acknowledges
  a repeated EOF itself (status *active*, or *terminated* after the transaction ended).
* **Finished after the end.** A Finished PDU repeated after the sender went idle (its
  ACK(Finished) was lost) is acknowledged from the transaction history; a Finished PDU that
  arrives while the sender still waits for ACK(EOF) implies that ACK (the receiver only
  finishes after the EOF) and is preceded by it.
* **Metadata during the deferred NAK procedure.** When the Metadata PDU was lost and comes
  back after the EOF (re-requested by a NAK), cfdp-py moves the receiver back to its
  file-data step, where it neither completes nor NAKs again: the transfer stalls. The wrapper
  keeps the receiver in the deferred procedure. cfdp-py also drops the file checksum of an
  EOF that comes before the Metadata (the file would then fail its check); the wrapper keeps
  it.
* **File data before the Metadata** (lost, or overtaken on a reordering link). cfdp-py cannot
  store it (no file name yet) and lists each such segment as lost ``(0, end)``: a segment
  at its last offset then stays "lost" after it is re-sent and received, and the transfer
  ends with NAK Limit Reached. The wrapper keeps class 2 file data that comes before the
  Metadata (up to ``early_data_octets``), leaves it out of its NAKs, and when the Metadata
  comes sets cfdp-py's lost-segment list right (all of ``[0, furthest end)`` before the EOF,
  ``[0, file size)`` after it, §4.6.4.3.1) and stores the kept data through the receiver.
  cfdp-py's NAK for each such PDU asks for the Metadata and all of ``[0, end)`` again; the
  wrapper sends the Metadata request (0-0 segment, §4.6.4.3.2) and each gap once — the
  deferred NAK sequence after the EOF asks again for what is still missing.
* **Checksum of a class 2 file.** cfdp-py compares the file checksum of a class 2 transfer
  only when segments had to be NAKed; the wrapper also checks it when none were, so a file
  stored wrongly (a failing memory) ends with File Checksum Failure, not as delivered.
* **Stale PDUs.** A PDU of a transaction that has ended (a late duplicate) is never fed to an
  idle handler: a Metadata PDU would start a new transaction and truncate the stored file.
* **Shared lost-segment list.** cfdp-py's receiver parameters share one ``LostSegmentTracker``
  between all its transactions and all its receivers (a dataclass default instance); each
  transaction here gets its own.
* **NAKs.** Outgoing NAKs are held ``nak_hold_s`` (the link's worst reordering lag; 0 on a
  link that keeps order), trimmed to what is still missing (:func:`~linkstack.cfdp.naks.
  trim_requests`) — a NAK with nothing left is dropped — and cut into NAK PDUs that each fit
  ``max_pdu_length`` (:func:`~linkstack.cfdp.naks.nak_sequence`). A segment NAKed less
  than ``renak_guard_s`` ago is not asked for again (cfdp-py's NAK sequence after the EOF
  repeats every gap its immediate NAKs have just reported, and each segment came twice).
* **Retransmission bookkeeping.** File data the sender already sent once is counted in
  ``status()["retransmitted_octets"]``; a segment already queued for sending is not queued a
  second time by a repeated NAK.
* **Proxy put** (§6.2.6.1): a Metadata PDU carrying a Proxy Put Request makes this entity send
  the named file to the requester (the ground's ``download``).
* **EOF (cancel).** spacepackets 0.32 decodes an EOF's condition code unshifted; the entity
  corrects it, so a cancelled transfer ends with a Finished PDU instead of an exception. An
  EOF (cancel) that follows the EOF (no error) — the sender cancelled while the receiver was
  waiting for NAKed data — is not taken for a repeated EOF: the receiver ends the transaction
  with the cancel's condition (cfdp-py ignores every EOF after the first).
* **A full store.** A file larger than the room left in the receiver's filestore
  (:attr:`MemoryFilestore.capacity`) is refused at its Metadata PDU: Filestore Rejection, the
  file discarded (cfdp-py only notices a refused write, and then not as a fault).
* **Unknown entity.** A Put.request to an entity that is not in the MIB is refused with a
  :class:`PutRefused` event (cfdp-py raises); nothing is sent.
* **Completion after a first EOF (cancel).** When a transaction's first PDU at the receiver
  is an EOF (cancel) (the Metadata and data lost, the sender gave up), cfdp-py acknowledges it
  and stops before its Finished PDU, and no timer calls it again: the wrapper runs it on.
* **Transaction inactivity.** cfdp-py has no inactivity timer: a receiver whose sender gave
  up before its EOF got through (its EOF (cancel) lost too) waited for file data for ever and
  refused every later transaction as busy. A receiver that hears nothing of its transaction
  for ``inactivity_timer_s`` (entity time: not while suspended) before the EOF declares
  Inactivity Detected (condition code 8; the MIB's transaction inactivity limit) and ends it.
* **Errors.** A PDU that does not decode, is not for this entity, or that a handler refuses
  is counted in ``status()["pdus_ignored"]`` by reason, never raised (principle 6).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from cfdppy import CfdpState, IndicationConfig, LocalEntityConfig, PutRequest
from cfdppy.handler import DestHandler, SourceHandler
from cfdppy.handler.dest import CompletionDisposition, LostSegmentTracker
from cfdppy.handler.dest import TransactionStep as DestStep
from cfdppy.handler.source import TransactionStep as SourceStep
from cfdppy.mib import (
    CheckTimerProvider,
    DefaultFaultHandlerBase,
    EntityType,
    RemoteEntityConfig,
    RemoteEntityConfigTable,
)
from cfdppy.user import (
    CfdpUserBase,
    FileSegmentRecvdParams,
    MetadataRecvParams,
    TransactionFinishedParams,
    TransactionParams,
)
from spacepackets.cfdp import (
    CfdpLv,
    ChecksumType,
    ConditionCode,
    TransactionId,
    TransmissionMode,
)
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
from spacepackets.cfdp.pdu.ack import TransactionStatus
from spacepackets.cfdp.pdu.finished import DeliveryCode, FileStatus
from spacepackets.cfdp.tlv import (
    MessageToUserTlv,
    ProxyClosureRequest,
    ProxyMessageType,
    ProxyPutRequest,
    ProxyPutRequestParams,
    ProxyTransmissionMode,
)
from spacepackets.countdown import Countdown
from spacepackets.seqcount import SeqCountProvider
from spacepackets.util import ByteFieldU16, UnsignedByteField

from linkstack.cfdp.filestore import MemoryFilestore
from linkstack.cfdp.naks import METADATA_REQUEST, RangeSet, nak_sequence, trim_requests
from linkstack.cfdp.timers import EntityClock, VirtualCountdown
from linkstack.errors import ConfigError

__all__ = [
    "CfdpEntity",
    "EntityConfig",
    "Fault",
    "MetadataReceived",
    "ProxyPutRefused",
    "PutRefused",
    "SegmentReceived",
    "StoreFull",
    "TransactionFinished",
    "TransactionKey",
    "TransactionStarted",
    "TransferClass",
]

# cfdp-py logs every fault and ignored PDU at WARNING; the entity counts them instead.
logging.getLogger("cfdppy").setLevel(logging.ERROR)

TransactionKey = tuple[int, int]
"""(source entity ID, transaction sequence number): a transaction's identity (§3.2)."""


class TransferClass(IntEnum):
    """CFDP service classes of the Copy File procedure (§7)."""

    UNACKNOWLEDGED = 1
    ACKNOWLEDGED = 2

    @property
    def mode(self) -> TransmissionMode:
        return (TransmissionMode.ACKNOWLEDGED if self is TransferClass.ACKNOWLEDGED
                else TransmissionMode.UNACKNOWLEDGED)


@dataclass(frozen=True)
class EntityConfig:
    """Local and remote entity settings (the MIB of §8.2/§8.3, one set for every peer).

    Attributes:
        entity_id: this entity's ID (16 bits).
        max_pdu_length: longest PDU sent (file data segments are cut to fit; NAK sequences
            are split into several PDUs to fit).
        ack_timer_s / ack_limit: positive ACK timer and its expiration limit (§4.7.1).
        nak_timer_s / nak_limit: NAK timer and its expiration limit (§4.6.4.7).
        check_timer_s / check_limit: class 1 check timer and limit (§4.6.3.3).
        closure_timer_s: class 1 sender's wait for a Finished PDU (closure requested).
        immediate_nak: NAK a gap as soon as it is seen (§4.6.4.3.1), besides the deferred
            NAKs after the EOF.
        nak_hold_s: hold each outgoing NAK this long, then send only what is still missing
            (set it to the link's worst reordering lag).
        renak_guard_s: do not ask again, within this time, for a segment already asked for
            (about one round trip: the answer is on its way). 0: off. The NAK timer's own
            repetitions come later and are never held back.
        checksum: file checksum type (§4.2.2).
        inactivity_timer_s: the transaction inactivity limit of a receiver before the EOF;
            None: ``(ack_limit + 1) * ack_timer_s`` or ``closure_timer_s``, the longer (a
            sender is silent that long only when it has given up).
        early_data_octets: class 2 file data that arrives before its Metadata PDU (lost, or
            overtaken on a reordering link) is kept, up to this many octets per transaction,
            and stored once the Metadata arrives; data beyond it is asked for again.
    """

    entity_id: int
    max_pdu_length: int = 1000
    ack_timer_s: float = 10.0
    ack_limit: int = 10
    nak_timer_s: float = 10.0
    nak_limit: int = 10
    check_timer_s: float = 10.0
    check_limit: int = 3
    closure_timer_s: float = 120.0
    immediate_nak: bool = True
    nak_hold_s: float = 0.0
    renak_guard_s: float = 0.0
    checksum: ChecksumType = ChecksumType.CRC_32
    early_data_octets: int = 1 << 24
    inactivity_timer_s: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.entity_id < 1 << 16:
            raise ConfigError(f"{self.entity_id} is outside 0..65535", key="entity_id")
        if self.max_pdu_length < 64:
            raise ConfigError("must be at least 64 octets", key="max_pdu_length")
        for key in ("ack_timer_s", "nak_timer_s", "check_timer_s", "closure_timer_s"):
            if not getattr(self, key) > 0:
                raise ConfigError("must be > 0", key=key)
        for key in ("ack_limit", "nak_limit", "check_limit"):
            if getattr(self, key) < 1:
                raise ConfigError("must be >= 1", key=key)
        for key in ("nak_hold_s", "renak_guard_s"):
            if not getattr(self, key) >= 0:
                raise ConfigError("must be >= 0", key=key)
        if self.early_data_octets < 0:
            raise ConfigError("must be >= 0", key="early_data_octets")
        if self.inactivity_timer_s is not None and not self.inactivity_timer_s > 0:
            raise ConfigError("must be > 0", key="inactivity_timer_s")

    @property
    def inactivity_s(self) -> float:
        """The transaction inactivity limit in force (see ``inactivity_timer_s``)."""
        if self.inactivity_timer_s is not None:
            return self.inactivity_timer_s
        return max((self.ack_limit + 1) * self.ack_timer_s, self.closure_timer_s)


# -- events -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TransactionStarted:
    key: TransactionKey
    role: str  # "source" or "dest"
    now: float


@dataclass(frozen=True)
class MetadataReceived:
    key: TransactionKey
    source_file: str | None
    dest_file: str | None
    size: int | None
    messages: tuple[bytes, ...]
    now: float


@dataclass(frozen=True)
class SegmentReceived:
    """File data stored by the receiver; ``new_octets`` were not received before."""

    key: TransactionKey
    offset: int
    length: int
    new_octets: int
    received: int
    size: int | None
    now: float


@dataclass(frozen=True)
class TransactionFinished:
    """Transaction-Finished.indication (§3.4.8) at either end.

    At the receiver, ``file`` is the stored file's name and ``messages`` the Messages to User
    of its Metadata PDU. ``condition`` is NO_ERROR and ``delivery`` DATA_COMPLETE for a file
    delivered whole with a matching checksum."""

    key: TransactionKey
    role: str
    condition: ConditionCode
    delivery: DeliveryCode
    file_status: FileStatus
    file: str | None
    size: int | None
    messages: tuple[bytes, ...]
    now: float

    @property
    def ok(self) -> bool:
        return (self.condition == ConditionCode.NO_ERROR
                and self.delivery == DeliveryCode.DATA_COMPLETE)


@dataclass(frozen=True)
class Fault:
    """A fault declared by a handler (§4.8): cancellation, suspension or abandonment."""

    key: TransactionKey | None
    role: str
    condition: ConditionCode
    progress: int
    now: float


@dataclass(frozen=True)
class PutRefused:
    """A Put.request this entity refused before any PDU was sent (``reason``:
    ``unknown_entity`` for a destination that is not in its MIB)."""

    dest_id: int
    file: str | None
    reason: str
    detail: str
    now: float


@dataclass(frozen=True)
class StoreFull:
    """A file refused at its Metadata PDU because the filestore has no room for it (the
    transaction then ends with Filestore Rejection)."""

    file: str
    size: int
    free: int
    now: float


@dataclass(frozen=True)
class ProxyPutRefused:
    """A Proxy Put Request naming a file this entity does not have."""

    key: TransactionKey
    file: str
    reason: str
    now: float


Event = (TransactionStarted | MetadataReceived | SegmentReceived | TransactionFinished | Fault
         | ProxyPutRefused | PutRefused | StoreFull)


# -- the parts cfdp-py asks for ---------------------------------------------------------------

def _key(tid: TransactionId) -> TransactionKey:
    return (tid.source_id.value, tid.seq_num.value)


def _pdu_key(pdu: Any) -> TransactionKey:
    return (pdu.source_entity_id.value, pdu.transaction_seq_num.value)


class _Faults(DefaultFaultHandlerBase):
    def __init__(self, entity: CfdpEntity) -> None:
        super().__init__()
        self.entity = entity

    def _record(self, tid: TransactionId, cond: ConditionCode, progress: int) -> None:
        self.entity._fault(_key(tid) if tid is not None else None, cond, progress)

    def notice_of_suspension_cb(self, transaction_id: TransactionId, cond: ConditionCode,
                                progress: int) -> None:
        self._record(transaction_id, cond, progress)

    def notice_of_cancellation_cb(self, transaction_id: TransactionId, cond: ConditionCode,
                                  progress: int) -> None:
        self._record(transaction_id, cond, progress)

    def abandoned_cb(self, transaction_id: TransactionId, cond: ConditionCode,
                     progress: int) -> None:
        self._record(transaction_id, cond, progress)

    def ignore_cb(self, transaction_id: TransactionId, cond: ConditionCode,
                  progress: int) -> None:
        self._record(transaction_id, cond, progress)


class _User(CfdpUserBase):
    """The CFDP user: turns indications into the entity's events."""

    def __init__(self, entity: CfdpEntity, filestore: MemoryFilestore) -> None:
        super().__init__(filestore)
        self.entity = entity

    def transaction_indication(self, transaction_indication_params: TransactionParams) -> None:
        self.entity._emit(TransactionStarted(
            _key(transaction_indication_params.transaction_id), "source", self.entity.now))

    def eof_sent_indication(self, transaction_id: TransactionId) -> None:
        return None

    def eof_recv_indication(self, transaction_id: TransactionId) -> None:
        return None

    def transaction_finished_indication(self, params: TransactionFinishedParams) -> None:
        self.entity._finished(_key(params.transaction_id), params)

    def metadata_recv_indication(self, params: MetadataRecvParams) -> None:
        self.entity._metadata(params)

    def file_segment_recv_indication(self, params: FileSegmentRecvdParams) -> None:
        return None

    def report_indication(self, transaction_id: TransactionId, status_report: Any) -> None:
        return None

    def suspended_indication(self, transaction_id: TransactionId,
                             cond_code: ConditionCode) -> None:
        return None

    def resumed_indication(self, transaction_id: TransactionId, progress: int) -> None:
        return None

    def fault_indication(self, transaction_id: TransactionId, cond_code: ConditionCode,
                         progress: int) -> None:
        return None

    def abandoned_indication(self, transaction_id: TransactionId, cond_code: ConditionCode,
                             progress: int) -> None:
        return None


class _CheckTimers(CheckTimerProvider):
    def __init__(self, entity: CfdpEntity) -> None:
        self.entity = entity

    def provide_check_timer(self, local_entity_id: UnsignedByteField,
                            remote_entity_id: UnsignedByteField,
                            entity_type: EntityType) -> Countdown:
        cfg = self.entity.config
        timeout = cfg.closure_timer_s if entity_type == EntityType.SENDING else cfg.check_timer_s
        return VirtualCountdown.create(self.entity.clock, timeout)


class _DestHandler(DestHandler):
    """cfdp-py's receiver with the fixes of the module docstring (private steps overridden)."""

    entity: CfdpEntity | None = None

    def _common_first_packet_handler(self, pdu: Any) -> bool | None:
        # A lost-segment list of its own for each transaction (cfdp-py shares one instance).
        self._params.acked_params.lost_seg_tracker = LostSegmentTracker()
        return super()._common_first_packet_handler(pdu)

    def _eof_ack_pdu_done(self) -> None:
        # cfdp-py checks the file checksum of a class 2 transfer only when data had to be
        # NAKed: a file stored wrongly without any loss would be reported complete.
        p = self._params
        if (p.completion_disposition == CompletionDisposition.COMPLETED
                and p.acked_params.lost_seg_tracker.num_lost_segments == 0
                and not p.acked_params.metadata_missing and p.fp.crc32 is not None
                and not self._checksum_verify(p.fp.progress, p.fp.crc32)):
            p.finished_params.delivery_code = DeliveryCode.DATA_INCOMPLETE
            p.finished_params.condition_code = ConditionCode.FILE_CHECKSUM_FAILURE
        super()._eof_ack_pdu_done()

    def _handle_eof_without_previous_metadata(self, eof_pdu: EofPdu) -> None:
        # cfdp-py forgets the checksum of an EOF that comes before the Metadata, and the
        # completed file then fails its check (FILE_CHECKSUM_FAILURE).
        self._params.fp.crc32 = eof_pdu.file_checksum
        super()._handle_eof_without_previous_metadata(eof_pdu)

    def _init_vfs_handling(self, source_base_name: str) -> None:
        # A file the store has no room for is refused at its Metadata PDU (§4.6.1.2.6:
        # Filestore Rejection), not found out while its data arrives.
        store = self.user.vfs
        fp = self._params.fp
        if (isinstance(store, MemoryFilestore) and fp.file_name is not None
                and not store.has_room(fp.file_name, fp.file_size or 0)):
            self._params.finished_params.file_status = FileStatus.DISCARDED_FILESTORE_REJECTION
            self._params.finished_params.delivery_code = DeliveryCode.DATA_INCOMPLETE
            if self.entity is not None:
                self.entity._store_full(fp.file_name.as_posix(), fp.file_size or 0,
                                        store.free() or 0)
            self._declare_fault(ConditionCode.FILESTORE_REJECTION)
            return
        super()._init_vfs_handling(source_base_name)

    def _handle_waiting_for_missing_metadata(self, packet_holder: Any) -> None:
        deferred = self._params.acked_params.deferred_lost_segment_detection_active
        super()._handle_waiting_for_missing_metadata(packet_holder)
        if deferred and self.states.step == DestStep.RECEIVING_FILE_DATA:
            # The EOF came before this Metadata: stay in the deferred NAK procedure.
            self.states.step = DestStep.WAITING_FOR_MISSING_DATA


# -- per-transaction bookkeeping of the wrapper -----------------------------------------------

@dataclass
class _Inbound:
    key: TransactionKey
    mode: TransmissionMode
    received: RangeSet = field(default_factory=RangeSet)
    metadata_seen: bool = False
    # class 2 file data that came before the Metadata PDU: kept by (offset, length), the
    # octets it covers, and the end of the furthest such segment cfdp-py was given
    early: dict[tuple[int, int], bytes] = field(default_factory=dict)
    early_ranges: RangeSet = field(default_factory=RangeSet)
    early_end: int = 0
    early_asked: RangeSet = field(default_factory=RangeSet)
    early_metadata_asked: bool = False
    heard: float = 0.0  # entity clock when a PDU of the transaction last came
    eof_seen: bool = False
    eof_acked: bool = False
    size: int | None = None
    file: str | None = None
    messages: tuple[bytes, ...] = ()
    asked: list[tuple[int, int, float]] = field(default_factory=list)  # NAKed: start, end, at
    metadata_asked: float = -math.inf
    started: bool = False
    finished: bool = False
    cancelled: bool = False


@dataclass
class _Outbound:
    key: TransactionKey | None
    mode: TransmissionMode
    file: str | None
    size: int
    sent: RangeSet = field(default_factory=RangeSet)
    finished: bool = False


@dataclass
class _Held:
    release_clock_s: float
    nak: NakPdu
    key: TransactionKey
    early: bool = False  # made for file data that came before the Metadata PDU


@dataclass
class _Out:
    data: bytes
    kind: str
    fd_range: tuple[int, int] | None = None


# -- the entity -------------------------------------------------------------------------------

class CfdpEntity:
    """One CFDP entity with a filestore, talking to peers whose IDs it is given."""

    def __init__(self, config: EntityConfig, filestore: MemoryFilestore | None = None, *,
                 peers: Iterable[int] = (), now: float = 0.0) -> None:
        self.config = config
        self.filestore = filestore if filestore is not None else MemoryFilestore()
        self.clock = EntityClock(now)
        self.now = now
        self._events: list[Event] = []
        self._faults = _Faults(self)
        local = LocalEntityConfig(ByteFieldU16(config.entity_id), IndicationConfig(),
                                  self._faults)
        self._remotes = RemoteEntityConfigTable()
        self._peers: set[int] = set()
        for peer in peers:
            self.add_peer(peer)
        self.user = _User(self, self.filestore)
        checks = _CheckTimers(self)
        self.source = SourceHandler(local, self.user, self._remotes, checks,
                                    SeqCountProvider(16))
        self.dest = _DestHandler(local, self.user, self._remotes, checks)
        self.dest.entity = self
        self._out: deque[_Out] = deque()
        self._queued_fd: Counter[tuple[int, int]] = Counter()
        self._held: list[_Held] = []
        self._inbound: _Inbound | None = None
        self._outbound: _Outbound | None = None
        self._pending_puts: deque[tuple[PutRequest, int]] = deque()
        self._inbound_done: dict[TransactionKey, bool] = {}  # key -> was class 2
        self._outbound_done: set[TransactionKey] = set()
        self._suspended = False
        self._last_timer = -1.0
        self.counters: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()

    # -- configuration -----------------------------------------------------------------------
    @property
    def entity_id(self) -> int:
        return self.config.entity_id

    def add_peer(self, peer: int) -> None:
        cfg = self.config
        self._peers.add(peer)
        self._remotes.add_config(RemoteEntityConfig(
            entity_id=ByteFieldU16(peer), max_file_segment_len=None,
            max_packet_len=cfg.max_pdu_length, closure_requested=True,
            crc_on_transmission=False, default_transmission_mode=TransmissionMode.ACKNOWLEDGED,
            crc_type=cfg.checksum, positive_ack_timer_interval_seconds=cfg.ack_timer_s,
            positive_ack_timer_expiration_limit=cfg.ack_limit, check_limit=cfg.check_limit,
            immediate_nak_mode=cfg.immediate_nak, nak_timer_interval_seconds=cfg.nak_timer_s,
            nak_timer_expiration_limit=cfg.nak_limit,
        ))

    def knows(self, entity_id: int) -> bool:
        """Whether ``entity_id`` is a peer in this entity's MIB."""
        return self._remotes.get_cfg(ByteFieldU16(entity_id)) is not None

    def _peer_ids(self) -> str:
        return ", ".join(str(i) for i in sorted(self._peers)) or "none"

    # -- requests ----------------------------------------------------------------------------
    def put(self, dest_id: int, source_file: str, dest_file: str,
            transfer_class: TransferClass | int, *, messages: Iterable[bytes] = (),
            now: float) -> None:
        """Put.request (§3.4.1): send ``source_file`` (in this entity's filestore) to entity
        ``dest_id`` as ``dest_file``. Queued if a transaction is already being sent. A
        destination this entity has no MIB entry for is refused: a :class:`PutRefused` event
        (``unknown_entity``), nothing is sent."""
        self._tick(now)
        cls = TransferClass(transfer_class)
        if not self.filestore.file_exists(Path(source_file)):
            raise ConfigError(f"no file {source_file!r} in the filestore", key="source_file")
        if not self.knows(dest_id):
            self._emit(PutRefused(dest_id, dest_file, "unknown_entity",
                                  f"CFDP entity {dest_id} is not in the MIB of entity "
                                  f"{self.entity_id} (known: {self._peer_ids()})", self.now))
            self.counters["puts_refused"] += 1
            return
        msgs = [MessageToUserTlv(bytes(m)) for m in messages]
        req = PutRequest(destination_id=ByteFieldU16(dest_id), source_file=Path(source_file),
                         dest_file=Path(dest_file), trans_mode=cls.mode, closure_requested=True,
                         msgs_to_user=msgs or None)
        self._pending_puts.append((req, self.filestore.file_size(Path(source_file))))

    def request_file(self, remote_id: int, remote_file: str, local_file: str,
                     transfer_class: TransferClass | int, *, now: float) -> None:
        """Ask entity ``remote_id`` to send ``remote_file`` here as ``local_file``: a
        metadata-only transaction carrying a Proxy Put Request (§6.2.6.1)."""
        self._tick(now)
        cls = TransferClass(transfer_class)
        proxy = ProxyPutRequest(ProxyPutRequestParams(
            ByteFieldU16(self.entity_id), CfdpLv(remote_file.encode()),
            CfdpLv(local_file.encode())))
        msgs = [proxy.to_generic_msg_to_user_tlv(),
                ProxyTransmissionMode(cls.mode).to_generic_msg_to_user_tlv(),
                ProxyClosureRequest(True).to_generic_msg_to_user_tlv()]
        req = PutRequest(destination_id=ByteFieldU16(remote_id), source_file=None,
                         dest_file=None, trans_mode=cls.mode, closure_requested=True,
                         msgs_to_user=msgs)
        self._pending_puts.append((req, 0))

    def cancel(self, now: float) -> bool:
        """Cancel.request (§3.4.4) of the transaction being sent, if any."""
        self._tick(now)
        tid = self.source.transaction_id
        if tid is None or self.source.state == CfdpState.IDLE:
            return False
        self._drain_source()
        done = self._call(self.source.cancel_request, tid)
        self._after_source()
        return bool(done)

    # -- suspension --------------------------------------------------------------------------
    @property
    def suspended(self) -> bool:
        return self._suspended

    def suspend(self, now: float) -> None:
        """Suspend this entity's transactions (loss of signal): nothing is sent, the timers
        stop; PDUs that still arrive are taken."""
        self._tick(now)
        if not self._suspended:
            self._suspended = True
            self.clock.freeze(now)
            self.counters["suspensions"] += 1

    def resume(self, now: float) -> None:
        """Resume (acquisition of signal): the timers go on from where they stopped."""
        self._tick(now)
        if self._suspended:
            self._suspended = False
            self.clock.thaw(now)

    # -- PDUs in -----------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> None:
        """Take one PDU (its octets) that arrived."""
        self._tick(now)
        self.counters["pdus_received"] += 1
        try:
            pdu = PduFactory.from_raw(bytes(data))
        except Exception as exc:  # cfdp-py/spacepackets raise ValueError, IndexError, ...
            self._ignore(f"undecodable: {type(exc).__name__}")
            return
        if pdu is None:
            self._ignore("undecodable: unknown directive")
            return
        if isinstance(pdu, EofPdu) and pdu.condition_code > 0x0F:
            # spacepackets 0.32 decodes the EOF's condition code without shifting it (an EOF
            # (cancel) comes out as 0xF0), and cfdp-py then fails to build its Finished PDU.
            pdu.condition_code = ConditionCode(pdu.condition_code >> 4)
        if isinstance(pdu, FileDataPdu | MetadataPdu | EofPdu) or (
                isinstance(pdu, AckPdu)
                and pdu.directive_code_of_acked_pdu == DirectiveType.FINISHED_PDU):
            self._to_dest(pdu)
        elif isinstance(pdu, FinishedPdu | NakPdu | AckPdu):
            self._to_source(pdu)
        else:
            self._ignore(f"unsupported {type(pdu).__name__}")

    def _to_dest(self, pdu: Any) -> None:
        key = _pdu_key(pdu)
        if pdu.dest_entity_id.value != self.entity_id:
            self._ignore("not for this entity")
            return
        if key in self._inbound_done:
            if isinstance(pdu, EofPdu) and self._inbound_done[key]:
                # §4.7.2: an EOF is acknowledged even after its transaction ended.
                self._queue_ack(AckPdu(pdu.pdu_header.pdu_conf, DirectiveType.EOF_PDU,
                                       pdu.condition_code, TransactionStatus.TERMINATED), key)
                self.counters["eof_reacked"] += 1
            else:
                self._ignore("stale: transaction ended")
            return
        inb = self._inbound
        if inb is not None and inb.key != key:
            self._ignore("busy: another transaction is being received")
            return
        dest = self.dest
        if isinstance(pdu, EofPdu) and inb is not None and inb.eof_seen \
                and pdu.condition_code != ConditionCode.NO_ERROR and not inb.cancelled \
                and dest.state != CfdpState.IDLE:
            # EOF (cancel) after the EOF (no error): the sender cancelled while data was still
            # missing (§4.6.6). cfdp-py ignores every EOF after the first: run its cancel
            # response here (Finished with the EOF's condition, after the ACK in class 2).
            inb.cancelled = True
            self.counters["eof_cancel_received"] += 1
            self._drain_dest()
            self._call(dest._handle_eof_pdu, pdu)
            self._drain_dest()
            self._call(dest.state_machine)
            self._after_dest()
            return
        if isinstance(pdu, EofPdu) and inb is not None and inb.eof_seen:
            if inb.mode == TransmissionMode.ACKNOWLEDGED and inb.eof_acked:
                self._queue_ack(AckPdu(pdu.pdu_header.pdu_conf, DirectiveType.EOF_PDU,
                                       pdu.condition_code, TransactionStatus.ACTIVE), key)
                self.counters["eof_reacked"] += 1
            else:
                self._ignore("duplicate EOF")
            return
        if isinstance(pdu, MetadataPdu) and inb is not None and inb.metadata_seen:
            self._ignore("duplicate Metadata")
            return
        if inb is None:
            inb = self._inbound = _Inbound(key, pdu.transmission_mode)
        inb.heard = self.clock.value()
        if (isinstance(pdu, FileDataPdu) and not inb.metadata_seen
                and pdu.transmission_mode == TransmissionMode.ACKNOWLEDGED):
            self._keep_early(inb, pdu)
            if (dest.step == DestStep.WAITING_FOR_METADATA
                    and dest.deferred_lost_segment_procedure_active):
                return  # the Metadata is already being asked for (the EOF came)
            # cfdp-py is given it too: it starts the transaction and NAKs the Metadata
            # (§4.6.4.3.2); its notion of what is lost is set right when the Metadata comes.
            inb.early_end = max(inb.early_end, pdu.offset + len(pdu.file_data))
        stored = isinstance(pdu, FileDataPdu) and inb.metadata_seen
        metadata_now = isinstance(pdu, MetadataPdu) and not inb.metadata_seen
        self._call(dest.state_machine, pdu)
        if not inb.started and dest.state != CfdpState.IDLE:
            inb.started = True
            self._emit(TransactionStarted(key, "dest", self.now))
        if isinstance(pdu, EofPdu):
            inb.eof_seen = True
            inb.size = pdu.file_size
        if stored:
            new = inb.received.add(pdu.offset, pdu.offset + len(pdu.file_data))
            self.counters["file_octets_received"] += len(pdu.file_data)
            self._emit(SegmentReceived(key, pdu.offset, len(pdu.file_data), new,
                                       inb.received.total, inb.size, self.now))
        self._after_dest()
        if metadata_now and inb.metadata_seen and self._inbound is inb:
            self._store_early(inb)

    def _keep_early(self, inb: _Inbound, pdu: FileDataPdu) -> None:
        """Keep class 2 file data that came before its Metadata PDU (it has no file to go to
        yet), up to ``early_data_octets``; what is kept is not NAKed."""
        seg = (pdu.offset, len(pdu.file_data))
        if seg[1] == 0 or seg in inb.early:
            return
        if inb.early_ranges.total + seg[1] > self.config.early_data_octets:
            self.counters["early_data_dropped_octets"] += seg[1]
            return
        inb.early[seg] = bytes(pdu.pack())  # cfdp-py changes the PDU it starts with
        inb.early_ranges.add(pdu.offset, pdu.offset + seg[1])
        self.counters["early_data_kept_octets"] += seg[1]

    def _store_early(self, inb: _Inbound) -> None:
        """The Metadata PDU came: store the file data kept before it.

        cfdp-py cannot store file data before the Metadata (no file name) and lists each such
        segment ``(0, end)`` as lost; data at its last offset then stays "lost" after it came
        again, and the transfer ends with NAK Limit Reached. Before the EOF, its list is set
        to all of ``[0, furthest end)`` lost; after the EOF it is already ``[0, file size)``
        (§4.6.4.3.1 c). The kept segments, given to it in offset order, are then taken off as
        re-sent data is."""
        early, inb.early, inb.early_ranges = inb.early, {}, RangeSet()
        dest = self.dest
        params = dest._params
        if (dest.state == CfdpState.IDLE
                or params.completion_disposition == CompletionDisposition.CANCELED
                or dest.step not in (DestStep.RECEIVING_FILE_DATA,
                                     DestStep.WAITING_FOR_MISSING_DATA)):
            return
        if dest.step == DestStep.RECEIVING_FILE_DATA:
            acked = params.acked_params
            acked.lost_seg_tracker.reset()
            if inb.early_end > 0:
                acked.lost_seg_tracker.add_lost_segment((0, inb.early_end))
            acked.last_start_offset = acked.last_end_offset = inb.early_end
            params.fp.progress = max(params.fp.progress, inb.early_end)
        for seg in sorted(early):
            if self._inbound is not inb:
                break
            self.counters["early_data_stored_octets"] += seg[1]
            self._to_dest(PduFactory.from_raw(early[seg]))

    def _to_source(self, pdu: Any) -> None:
        key = _pdu_key(pdu)
        if key[0] != self.entity_id:
            self._ignore("not from a transaction of this entity")
            return
        if key in self._outbound_done:
            if isinstance(pdu, FinishedPdu) and pdu.transmission_mode == \
                    TransmissionMode.ACKNOWLEDGED:
                # The sender's ACK(Finished) was lost; the transaction is over here.
                self._queue_ack(AckPdu(pdu.pdu_header.pdu_conf, DirectiveType.FINISHED_PDU,
                                       pdu.condition_code, TransactionStatus.TERMINATED), key)
                self.counters["finished_reacked"] += 1
            else:
                self._ignore("stale: transaction ended")
            return
        src = self.source
        if src.transaction_id is None or _key(src.transaction_id) != key:
            self._ignore("no such transaction")
            return
        self._drain_source()
        if isinstance(pdu, FinishedPdu) and src.step == SourceStep.WAITING_FOR_EOF_ACK:
            # A Finished PDU means the receiver had the EOF: its ACK was lost on the way.
            self._call(src.state_machine, AckPdu(pdu.pdu_header.pdu_conf,
                                                 DirectiveType.EOF_PDU, ConditionCode.NO_ERROR,
                                                 TransactionStatus.ACTIVE))
            self.counters["eof_ack_implied"] += 1
            self._drain_source()
        self._call(src.state_machine, pdu)
        self._after_source()

    # -- PDUs out ----------------------------------------------------------------------------
    def pull(self, now: float, limit: int = 1) -> list[bytes]:
        """Up to ``limit`` PDUs to send now (none while suspended). New file data is read
        only when asked for: call this when the link below has room."""
        self._tick(now)
        out: list[bytes] = []
        if self._suspended:
            return out
        self._release_naks()
        while len(out) < limit:
            if not self._out:
                self._generate()
                if not self._out:
                    break
            item = self._out.popleft()
            if item.fd_range is not None:
                self._queued_fd[item.fd_range] -= 1
                if self._outbound is not None:
                    start, end = item.fd_range
                    again = self._outbound.sent.covered(start, end)
                    if again:
                        self.counters["retransmitted_octets"] += again
                    self._outbound.sent.add(start, end)
                self.counters["file_octets_sent"] += item.fd_range[1] - item.fd_range[0]
            self.counters[f"sent_{item.kind}"] += 1
            out.append(item.data)
        return out

    def has_output(self) -> bool:
        """Something to send, or file data still to read (False while suspended)."""
        if self._suspended:
            return False
        if self._out or self._pending_puts:
            return True
        return self.source.state != CfdpState.IDLE and self.source.step in (
            SourceStep.IDLE, SourceStep.TRANSACTION_START, SourceStep.SENDING_METADATA,
            SourceStep.SENDING_FILE_DATA, SourceStep.SENDING_EOF, SourceStep.RETRANSMITTING)

    def _generate(self) -> None:
        """Run the sender one step: the next Metadata, file data or EOF PDU."""
        src = self.source
        if src.state == CfdpState.IDLE:
            if not self._pending_puts:
                return
            req, size = self._pending_puts.popleft()
            self._drain_source()
            if not self._call(src.put_request, req):
                self._ignore("put request refused")
                return
            self._outbound = _Outbound(None, req.trans_mode or TransmissionMode.ACKNOWLEDGED,
                                       None if req.source_file is None else
                                       req.source_file.as_posix(), size)
        elif src.step not in (SourceStep.IDLE, SourceStep.TRANSACTION_START,
                              SourceStep.SENDING_METADATA, SourceStep.SENDING_FILE_DATA,
                              SourceStep.SENDING_EOF, SourceStep.RETRANSMITTING):
            return
        self._call(src.state_machine)
        self._after_source()

    # -- timers ------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` must run next (None while suspended or idle)."""
        if self._suspended:
            return None
        deadlines: list[float] = [h.release_clock_s for h in self._held]
        src, dst = self.source, self.dest
        sp, dp = src._params, dst._params
        if src.state != CfdpState.IDLE:
            if src.step == SourceStep.WAITING_FOR_EOF_ACK:
                deadlines.append(self._deadline(sp.positive_ack_params.ack_timer))
            elif src.step == SourceStep.WAITING_FOR_FINISHED and sp.check_timer is not None:
                deadlines.append(self._deadline(sp.check_timer))
        if dst.state != CfdpState.IDLE:
            step = dst.step
            if step in (DestStep.WAITING_FOR_MISSING_DATA, DestStep.WAITING_FOR_METADATA) \
                    and dp.acked_params.deferred_lost_segment_detection_active:
                deadlines.append(self._deadline(dp.acked_params.procedure_timer))
            elif step == DestStep.RECV_FILE_DATA_WITH_CHECK_LIMIT_HANDLING:
                deadlines.append(self._deadline(dp.check_timer))
            elif step == DestStep.WAITING_FOR_FINISHED_ACK:
                deadlines.append(self._deadline(dp.positive_ack_params.ack_timer))
            inactive = self._inactive_since()
            if inactive is not None:
                deadlines.append(inactive + self.config.inactivity_s)
        live = [d for d in deadlines if d > self._last_timer]
        if not live:
            return None
        return self.clock.to_virtual(min(live))

    def _deadline(self, countdown: Countdown | None) -> float:
        cd = VirtualCountdown.adopt(countdown, self.clock)
        return float("inf") if cd is None else cd.deadline

    def on_timer(self, now: float) -> None:
        self._tick(now)
        if self._suspended:
            return
        self._last_timer = self.clock.value()
        self._release_naks()
        if self.source.state != CfdpState.IDLE:
            self._drain_source()
            self._call(self.source.state_machine)
            self._after_source()
        if self.dest.state != CfdpState.IDLE:
            self._call(self.dest.state_machine)
            self._after_dest()
        inactive = self._inactive_since()
        if inactive is not None and self.clock.value() >= inactive + self.config.inactivity_s:
            self.counters["inactivity_faults"] += 1
            self._call(self.dest._declare_fault, ConditionCode.INACTIVITY_DETECTED)
            self._call(self.dest.state_machine)
            self._after_dest()

    def _inactive_since(self) -> float | None:
        """When the receiver last heard of its transaction, while it waits for file data
        before the EOF (where no other timer runs); None otherwise."""
        dst, inb = self.dest, self._inbound
        if dst.state == CfdpState.IDLE or inb is None or inb.eof_seen:
            return None
        if dst.step == DestStep.RECEIVING_FILE_DATA or (
                dst.step == DestStep.WAITING_FOR_METADATA
                and not dst.deferred_lost_segment_procedure_active):
            return inb.heard
        return None

    # -- events and status -------------------------------------------------------------------
    def events(self) -> list[Event]:
        """The events since the last call."""
        out, self._events = self._events, []
        return out

    @property
    def idle(self) -> bool:
        return (self.source.state == CfdpState.IDLE and self.dest.state == CfdpState.IDLE
                and not self._out and not self._pending_puts and not self._held)

    def status(self) -> dict[str, object]:
        return {
            "entity_id": self.entity_id, "suspended": self._suspended,
            "source": {"state": self.source.state.name, "step": self.source.step.name},
            "dest": {"state": self.dest.state.name, "step": self.dest.step.name},
            "queued_pdus": len(self._out), "held_naks": len(self._held),
            "counters": dict(self.counters), "pdus_ignored": dict(self.ignored),
        }

    # -- internals ---------------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        if now > self.now:
            self.now = now
        self.clock.tick(now)

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _ignore(self, reason: str) -> None:
        self.ignored[reason] += 1

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # cfdp-py refuses PDUs by raising
            reason = type(exc).__name__
            detail = getattr(getattr(exc, "reason", None), "name", None)
            self._ignore(f"{reason}: {detail}" if detail else reason)
            return None

    def _adopt_timers(self) -> None:
        for params in (self.source._params, self.dest._params):
            VirtualCountdown.adopt(params.positive_ack_params.ack_timer, self.clock)
            VirtualCountdown.adopt(params.check_timer, self.clock)
        VirtualCountdown.adopt(self.dest._params.acked_params.procedure_timer, self.clock)

    def _drain_source(self) -> None:
        while True:
            holder = self.source.get_next_packet()
            if holder is None:
                return
            pdu = holder.pdu
            if isinstance(pdu, FileDataPdu):
                rng = (pdu.offset, pdu.offset + len(pdu.file_data))
                if self._queued_fd[rng] > 0:  # already waiting to go: a repeated NAK
                    self.counters["duplicate_fd_skipped"] += 1
                    continue
                self._queued_fd[rng] += 1
                self._out.append(_Out(bytes(holder.pdu.pack()), "file_data", rng))
            else:
                kind = holder.pdu_directive_type
                self._out.append(_Out(bytes(holder.pdu.pack()),
                                      kind.name.lower() if kind is not None else "pdu"))
                if (isinstance(pdu, MetadataPdu) and self._outbound is not None
                        and self._outbound.key is None):
                    self._outbound.key = _pdu_key(pdu)

    def _after_source(self) -> None:
        self._drain_source()
        self._adopt_timers()
        ob = self._outbound
        if ob is not None and self.source.state == CfdpState.IDLE:
            if ob.key is not None:
                self._outbound_done.add(ob.key)
            self._outbound = None

    def _drain_dest(self) -> None:
        inb = self._inbound
        while True:
            holder = self.dest.get_next_packet()
            if holder is None:
                return
            pdu = holder.pdu
            if isinstance(pdu, NakPdu) and inb is not None:
                early = not (inb.metadata_seen or self.dest.deferred_lost_segment_procedure_active)
                self._held.append(_Held(self.clock.value() + self.config.nak_hold_s, pdu,
                                        inb.key, early))
                continue
            if (isinstance(pdu, AckPdu) and pdu.directive_code_of_acked_pdu ==
                    DirectiveType.EOF_PDU and inb is not None):
                inb.eof_acked = True
            kind = holder.pdu_directive_type
            self._out.append(_Out(bytes(holder.pdu.pack()),
                                  kind.name.lower() if kind is not None else "pdu"))

    def _after_dest(self) -> None:
        self._drain_dest()
        if self.dest.state != CfdpState.IDLE and self.dest.step in (
                DestStep.TRANSFER_COMPLETION, DestStep.SENDING_FINISHED_PDU):
            # cfdp-py returns after the first PDU of a transaction once it has a PDU to send
            # (an EOF (cancel) that starts one: its ACK) and finishes only when called again;
            # nothing else would call it (no timer runs in these steps).
            self._call(self.dest.state_machine)
            self._drain_dest()
        self._adopt_timers()
        self._release_naks()
        inb = self._inbound
        if inb is not None and self.dest.state == CfdpState.IDLE:
            if inb.started or inb.finished:
                self._inbound_done[inb.key] = inb.mode == TransmissionMode.ACKNOWLEDGED
            self._inbound = None
            dropped = [h for h in self._held if h.key == inb.key]
            if dropped:  # held NAKs of a transaction that completed meanwhile
                self.counters["naks_suppressed"] += len(dropped)
                self._held = [h for h in self._held if h.key != inb.key]

    def _release_naks(self) -> None:
        if not self._held or self._suspended:
            return
        now = self.clock.value()
        keep: list[_Held] = []
        for held in self._held:
            if held.release_clock_s > now:
                keep.append(held)
                continue
            inb = self._inbound
            if inb is None or inb.key != held.key:
                continue
            nak = held.nak
            asked = nak.segment_requests
            have = inb.received
            if inb.early:  # kept until the Metadata comes: not to be sent again
                have = RangeSet([*inb.received, *inb.early_ranges])
            left = trim_requests(asked, have, inb.metadata_seen)
            if held.early:
                left = self._asked_first(inb, left)
            left = self._not_asked_lately(inb, left, now)
            left.sort(key=lambda r: (r != (0, 0), r[0]))
            if not left:
                self.counters["naks_suppressed"] += 1
                continue
            if left != asked:
                self.counters["naks_trimmed"] += 1
            conf = nak.pdu_header.pdu_conf
            for pdu in nak_sequence(conf, nak.start_of_scope, nak.end_of_scope, left,
                                    self.config.max_pdu_length):
                self._out.append(_Out(bytes(pdu.pack()), "nak"))
        self._held = keep

    def _asked_first(self, inb: _Inbound,
                     requests: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The part of a NAK made before the Metadata PDU came that was not asked for by such
        a NAK already. (cfdp-py's NAK for each file data PDU before the Metadata asks for the
        Metadata and for all of ``[0, its end)``: every gap again, once per PDU.) What one of
        these NAKs asked for and did not get is asked for again by the NAK sequence after the
        EOF (§4.6.4.3.1 c)."""
        out: list[tuple[int, int]] = []
        for req in requests:
            if req == METADATA_REQUEST:
                if not inb.early_metadata_asked:
                    inb.early_metadata_asked = True
                    out.append(req)
                continue
            out.extend(inb.early_asked.missing(*req))
            inb.early_asked.add(*req)
        return out

    def _not_asked_lately(self, inb: _Inbound, requests: list[tuple[int, int]],
                          now: float) -> list[tuple[int, int]]:
        """``requests`` minus what was NAKed less than ``renak_guard_s`` ago; notes the rest
        as asked now. (Without it, the NAK sequence that follows the EOF asks again for every
        gap the immediate NAKs have just asked for, and each comes twice.)"""
        guard = self.config.renak_guard_s
        if guard <= 0:
            return requests
        since = now - guard
        inb.asked = [a for a in inb.asked if a[2] > since]
        recent = RangeSet((s, e) for s, e, _ in inb.asked)
        out: list[tuple[int, int]] = []
        for req in requests:
            if req == (0, 0):
                if inb.metadata_asked <= since:
                    out.append(req)
                    inb.metadata_asked = now
                continue
            for piece in recent.missing(*req):
                out.append(piece)
                inb.asked.append((piece[0], piece[1], now))
        return out

    def _queue_ack(self, ack: AckPdu, key: TransactionKey) -> None:
        self._out.append(_Out(bytes(ack.pack()), "ack"))

    # -- indications (called by the user and the fault handlers) -----------------------------
    def _metadata(self, params: MetadataRecvParams) -> None:
        inb = self._inbound
        msgs = tuple(bytes(m.value) for m in (params.msgs_to_user or ()))
        if inb is not None:
            inb.metadata_seen = True
            inb.file = params.dest_file_name
            inb.size = params.file_size if params.file_size is not None else inb.size
            inb.messages = msgs
        key = _key(params.transaction_id)
        self._emit(MetadataReceived(key, params.source_file_name, params.dest_file_name,
                                    params.file_size, msgs, self.now))
        for m in params.msgs_to_user or ():
            self._proxy(key, m)

    def _proxy(self, key: TransactionKey, msg: MessageToUserTlv) -> None:
        if not msg.is_reserved_cfdp_message():
            return
        reserved = msg.to_reserved_msg_tlv()
        if reserved is None or not reserved.is_cfdp_proxy_operation():
            return
        if reserved.get_cfdp_proxy_message_type() != ProxyMessageType.PUT_REQUEST:
            return
        params = reserved.get_proxy_put_request_params()
        if params is None:
            return
        mode = TransmissionMode.ACKNOWLEDGED
        inb = self._inbound
        if inb is not None:
            mode = inb.mode
        for other in self._inbound_messages():
            m = other.to_reserved_msg_tlv() if other.is_reserved_cfdp_message() else None
            if m is not None and m.is_cfdp_proxy_operation() and \
                    m.get_cfdp_proxy_message_type() == ProxyMessageType.TRANSMISSION_MODE:
                mode = m.get_proxy_transmission_mode() or mode
        name = params.source_file_as_str
        if not self.filestore.file_exists(Path(name)):
            self._emit(ProxyPutRefused(key, name, "no such file", self.now))
            return
        cls = (TransferClass.ACKNOWLEDGED if mode == TransmissionMode.ACKNOWLEDGED
               else TransferClass.UNACKNOWLEDGED)
        self.put(params.dest_entity_id.value, name, params.dest_file_as_str, cls, now=self.now)

    def _inbound_messages(self) -> list[MessageToUserTlv]:
        inb = self._inbound
        return [] if inb is None else [MessageToUserTlv(m) for m in inb.messages]

    def _finished(self, key: TransactionKey, params: TransactionFinishedParams) -> None:
        fp = params.finished_params
        if key[0] == self.entity_id:
            ob = self._outbound
            self._emit(TransactionFinished(key, "source", fp.condition_code, fp.delivery_code,
                                           fp.file_status, ob.file if ob else None,
                                           ob.size if ob else None, (), self.now))
            return
        inb = self._inbound
        if inb is not None:
            if inb.finished:  # cfdp-py repeats the indication after a Finished ACK fault
                return
            inb.finished = True
        self._emit(TransactionFinished(
            key, "dest", fp.condition_code, fp.delivery_code, fp.file_status,
            inb.file if inb else None, inb.size if inb else None,
            inb.messages if inb else (), self.now))

    def _store_full(self, file: str, size: int, free: int) -> None:
        self.counters["files_refused_store_full"] += 1
        self._emit(StoreFull(file, size, free, self.now))

    def _fault(self, key: TransactionKey | None, cond: ConditionCode, progress: int) -> None:
        role = "source" if key is not None and key[0] == self.entity_id else "dest"
        self._emit(Fault(key, role, cond, progress, self.now))
