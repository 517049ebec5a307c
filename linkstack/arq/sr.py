"""Selective-repeat ARQ for high-rate, long-delay links (laser inter-satellite links).

COP-1 is go-back-N with an 8-bit sequence number: one lost frame costs a whole window of
retransmissions, and the window cannot exceed 127 frames. On a laser ISL (Gbit/s, tens of ms)
the bandwidth-delay product is thousands of frames. This module is a sans-IO selective-repeat
ARQ in the spirit of TCP SACK (RFC 2018) and QUIC loss recovery (RFC 9002):

- **Sequence numbers** are 32 bits on the wire, unbounded integers inside the engines;
  the wire value is mapped back with serial-number arithmetic (RFC 1982) around the
  receiver's next expected number, so the window must stay below 2**31.
- **Acknowledgements** carry a cumulative ack (the next expected sequence number: everything
  below it was received) and a bitmap of the frames received above it, bit *i* (most
  significant bit of the first octet first) standing for ``cumulative_ack + 1 + i``.
  They also echo the sequence number of the data frame that triggered them and the delay the
  receiver held the ack (``ack_delay``), for round-trip measurement.
- **Retransmission timeout** from measured round trips, RFC 6298: SRTT, RTTVAR, RTO =
  SRTT + max(G, 4 RTTVAR); one timer, started when a frame goes out and none is running,
  restarted when an ack acknowledges new frames (§5.3); at expiry every frame in flight for
  at least RTO is retransmitted and the RTO backs off by ``rto_backoff`` (§5.5);
  **Karn's rule**: no sample from a retransmitted frame. Deviation: RFC 6298 (2.4) rounds RTO
  up to 1 s; a space link knows its delay, so the floor ``min_rto`` is configurable (default
  10 ms).
- **Loss detection** before the timer, RFC 9002 packet threshold: a frame is declared lost
  when a frame transmitted ``reorder_threshold`` transmissions after it has been acknowledged.
  Transmissions are counted in sending order, retransmissions included. An acknowledged frame
  is credited with its latest transmission if it is the frame that triggered the ack (it
  arrived just now), otherwise with its first (an ack cannot tell which copy of a
  retransmitted frame arrived: the conservative choice).
- **Window**: at most ``window`` sequence numbers from the oldest unacknowledged one may be in
  flight; the receiver buffers out-of-order frames in the same window and delivers in order.

Hybrid ARQ flag (``fec=True``). It tells the sender that the link below has forward error
correction (e.g. the RS or LDPC codecs of :mod:`linkstack.codecs`), so random bit errors are
corrected and the frames that still get lost are mostly lost in *bursts* (fades, pointing
outages). What it changes, and nothing else: when the retransmission timer expires, the
sender retransmits only the oldest expired frame, as a probe, and parks the other expired
frames; the first acknowledgement that arrives afterwards (the link is back) releases them
all at once. Without the flag every expired frame is retransmitted at expiry. Effect: during
an outage the transmitter does not fill its queue with retransmissions that will be lost
(the queue would delay fresh frames after the outage); cost: an isolated loss caught by the
timer (not by the SACK threshold) is recovered one round trip later. SACK-driven
retransmission is the same in both modes.

Wire format, declared once with construct (:data:`SR_DATA_HEADER`, :data:`SR_ACK_HEADER`) with
the generated fast path (:class:`linkstack.bitfields.BitHeader`); the frames are plain octet
strings that can ride in any transfer frame data field or a USLP/AOS virtual channel:

    data frame:  version(2)=00 | kind(2)=00 | retransmission(1) | spare(3) | seq(32) |
                 data_length(16) | data (data_length octets)
    ack frame:   version(2)=00 | kind(2)=01 | spare(4) | cumulative_ack(32) | echo_seq(32) |
                 ack_delay(16, units of 100 us) | bitmap_length(16, octets) | bitmap

Octets after ``data`` / ``bitmap`` (idle fill of a fixed-length container) are ignored.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import construct as c

from linkstack.arq.common import Acknowledged, ArqCounters, Delivered, Undelivered
from linkstack.bitfields import BitHeader
from linkstack.errors import ConfigError, DecodeError, TruncatedError

__all__ = [
    "ACK_DELAY_UNIT",
    "SEQ_MODULUS",
    "SR_ACK_FRAME",
    "SR_ACK_HEADER",
    "SR_DATA_FRAME",
    "SR_DATA_HEADER",
    "SrAck",
    "SrConfig",
    "SrData",
    "SrFrameKind",
    "SrReceiver",
    "SrReceiverEvent",
    "SrSender",
    "SrSenderEvent",
    "TransmitSrFrame",
    "decode_sr_frame",
]

LAYER = "sr"
SEQ_BITS = 32
SEQ_MODULUS = 1 << SEQ_BITS
_HALF = SEQ_MODULUS // 2
ACK_DELAY_UNIT = 100e-6
"""Seconds per unit of the ``ack_delay`` field."""


class SrFrameKind(enum.IntEnum):
    DATA = 0
    ACK = 1


SR_DATA_HEADER_STRUCT = c.BitStruct(
    "version" / c.Const(0, c.BitsInteger(2)),
    "kind" / c.Const(int(SrFrameKind.DATA), c.BitsInteger(2)),
    "retransmission" / c.Flag,
    c.Padding(3),
    "seq" / c.BitsInteger(32),
    "data_length" / c.BitsInteger(16),
)
SR_ACK_HEADER_STRUCT = c.BitStruct(
    "version" / c.Const(0, c.BitsInteger(2)),
    "kind" / c.Const(int(SrFrameKind.ACK), c.BitsInteger(2)),
    c.Padding(4),
    "cumulative_ack" / c.BitsInteger(32),
    "echo_seq" / c.BitsInteger(32),
    "ack_delay" / c.BitsInteger(16),
    "bitmap_length" / c.BitsInteger(16),
)
SR_DATA_FRAME = c.Struct(
    "header" / SR_DATA_HEADER_STRUCT,
    "data" / c.Bytes(c.this.header.data_length),
)
"""The whole data frame, for the specs and the tests (the engines use the fast path)."""
SR_ACK_FRAME = c.Struct(
    "header" / SR_ACK_HEADER_STRUCT,
    "bitmap" / c.Bytes(c.this.header.bitmap_length),
)
SR_DATA_HEADER = BitHeader(LAYER, SR_DATA_HEADER_STRUCT)
SR_ACK_HEADER = BitHeader(LAYER, SR_ACK_HEADER_STRUCT)
DATA_HEADER_SIZE = SR_DATA_HEADER.size  # 7
ACK_HEADER_SIZE = SR_ACK_HEADER.size  # 13


@dataclass(frozen=True, slots=True)
class SrData:
    """A data frame: ``seq`` is the 32-bit wire value."""

    seq: int
    data: bytes
    retransmission: bool = False

    def encode(self) -> bytes:
        return SR_DATA_HEADER.pack(int(self.retransmission), self.seq & (SEQ_MODULUS - 1),
                                   len(self.data)) + self.data


@dataclass(frozen=True, slots=True)
class SrAck:
    """An ack frame (wire values: 32-bit ``cumulative_ack`` and ``echo_seq``)."""

    cumulative_ack: int
    echo_seq: int
    ack_delay: int = 0
    bitmap: bytes = b""

    def encode(self) -> bytes:
        return SR_ACK_HEADER.pack(self.cumulative_ack & (SEQ_MODULUS - 1),
                                  self.echo_seq & (SEQ_MODULUS - 1),
                                  min(self.ack_delay, 0xFFFF), len(self.bitmap)) + self.bitmap

    def received_offsets(self) -> list[int]:
        """Offsets *i* >= 1 such that ``cumulative_ack + i`` is marked received."""
        out = []
        for octet_index, octet in enumerate(self.bitmap):
            if octet:
                for bit in range(8):
                    if octet & (0x80 >> bit):
                        out.append(octet_index * 8 + bit + 1)
        return out


def decode_sr_frame(buf: bytes, offset: int = 0) -> SrData | SrAck:
    """Decode one SR frame at ``offset``; raises only :mod:`linkstack.errors` types."""
    if len(buf) - offset < 1:
        raise TruncatedError("empty SR frame", layer=LAYER, field="header", offset=offset)
    first = buf[offset]
    if first >> 6:
        raise DecodeError(f"is {first >> 6}, must be 0", layer=LAYER, field="version",
                          offset=offset)
    kind = (first >> 4) & 0b11
    if kind == SrFrameKind.DATA:
        retx, seq, length = SR_DATA_HEADER.unpack(buf, offset)
        start = offset + DATA_HEADER_SIZE
        if len(buf) - start < length:
            raise TruncatedError(f"data_length {length} but {len(buf) - start} octets left",
                                 layer=LAYER, field="data_length", offset=offset + 5)
        return SrData(seq, bytes(buf[start:start + length]), bool(retx))
    if kind == SrFrameKind.ACK:
        cum, echo, delay, length = SR_ACK_HEADER.unpack(buf, offset)
        start = offset + ACK_HEADER_SIZE
        if len(buf) - start < length:
            raise TruncatedError(f"bitmap_length {length} but {len(buf) - start} octets left",
                                 layer=LAYER, field="bitmap_length", offset=offset + 11)
        return SrAck(cum, echo, delay, bytes(buf[start:start + length]))
    raise DecodeError(f"is {kind}, must be 0 (data) or 1 (ack)", layer=LAYER, field="kind",
                      offset=offset)


def unwrap(wire: int, reference: int) -> int:
    """The absolute sequence number nearest to ``reference`` whose low 32 bits are ``wire``
    (RFC 1982 serial number arithmetic)."""
    delta = (wire - reference) % SEQ_MODULUS
    return reference + delta if delta < _HALF else reference + delta - SEQ_MODULUS


@dataclass(frozen=True, slots=True)
class TransmitSrFrame:
    """An SR engine asks the lower layer to send ``data`` (an encoded SR frame).
    ``seq`` is the absolute sequence number of a data frame (for an ack: its cumulative ack)."""

    data: bytes
    kind: SrFrameKind
    seq: int
    retransmission: bool = False


SrSenderEvent = TransmitSrFrame | Acknowledged | Undelivered
"""Everything an :class:`SrSender` call returns: data frames to send, confirmations, and the
SDUs given up by :meth:`SrSender.abort`."""

SrReceiverEvent = TransmitSrFrame | Delivered
"""Everything an :class:`SrReceiver` call returns: ack frames to send and SDUs delivered in
order."""


@dataclass(frozen=True, slots=True)
class SrConfig:
    """Selective-repeat parameters (shared by sender and receiver; each uses its own).

    Args:
        window: frames in flight / receive buffer size, 1 .. 2**31-1.
        initial_rto: RTO before the first round-trip sample (RFC 6298: 1 s).
        min_rto / max_rto: bounds of the RTO (see the module docstring about ``min_rto``).
        rto_backoff: factor applied to the RTO at each expiry (RFC 6298 §5.5: 2). Backing
            off protects a congested network; a dedicated space link is not congested, so a
            caller that knows its link may prefer 1 (no backoff) or a small ``max_rto``.
        clock_granularity: G of RFC 6298.
        reorder_threshold: packet threshold of the loss detection (RFC 9002: 3).
        fec: the link below has FEC (hybrid ARQ); see the module docstring for what it does.
        initial_seq: first sequence number (tests use it to cross the 2**32 wrap).
        ack_every: the receiver acknowledges every n-th in-order frame at once (1: every
            frame); out-of-order and duplicate frames are always acknowledged at once.
        max_ack_delay: longest the receiver holds an ack when ``ack_every`` > 1.
        max_bitmap_octets: longest bitmap an ack carries (frames beyond it are reported by
            later acks).
    """

    window: int = 64
    initial_rto: float = 1.0
    min_rto: float = 0.01
    max_rto: float = 60.0
    rto_backoff: float = 2.0
    clock_granularity: float = 0.001
    reorder_threshold: int = 3
    fec: bool = False
    initial_seq: int = 0
    ack_every: int = 1
    max_ack_delay: float = 0.0
    max_bitmap_octets: int = 1024

    def __post_init__(self) -> None:
        if not 1 <= self.window < _HALF:
            raise ConfigError(f"{self.window} is outside 1..2**31-1", key="window")
        if not 0 < self.min_rto <= self.max_rto:
            raise ConfigError("need 0 < min_rto <= max_rto", key="min_rto")
        if self.rto_backoff < 1:
            raise ConfigError(f"{self.rto_backoff} must be >= 1", key="rto_backoff")
        if not self.initial_rto > 0:
            raise ConfigError(f"{self.initial_rto} must be > 0", key="initial_rto")
        if self.reorder_threshold < 1:
            raise ConfigError(f"{self.reorder_threshold} must be >= 1", key="reorder_threshold")
        if self.ack_every < 1:
            raise ConfigError(f"{self.ack_every} must be >= 1", key="ack_every")
        if self.max_ack_delay < 0:
            raise ConfigError(f"{self.max_ack_delay} must be >= 0", key="max_ack_delay")
        if not 0 <= self.max_bitmap_octets <= 0xFFFF:
            raise ConfigError(f"{self.max_bitmap_octets} is outside 0..65535",
                              key="max_bitmap_octets")
        if self.initial_seq < 0:
            raise ConfigError(f"{self.initial_seq} must be >= 0", key="initial_seq")


@dataclass(slots=True)
class _Outstanding:
    seq: int
    data: bytes
    handle: Any
    first_sent: float
    last_sent: float
    first_tx: int
    last_tx: int
    transmissions: int = 1
    parked: bool = False


class SrSender:
    """Sending end of the selective-repeat ARQ (see the module docstring).

    ``send`` queues an SDU (the queue is unbounded: flow control is the window); the returned
    events are :class:`TransmitSrFrame` for the lower layer, :class:`Acknowledged` when the
    receiver confirmed an SDU, :class:`Undelivered` only from :meth:`abort`.
    Variables: ``next_seq`` (next new sequence number), ``base`` (oldest unacknowledged),
    ``srtt``, ``rttvar``, ``rto``, ``outstanding`` (frames in flight).
    """

    def __init__(self, config: SrConfig | None = None) -> None:
        self.config = config or SrConfig()
        self.next_seq = self.config.initial_seq
        self.base = self.next_seq
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto = min(max(self.config.initial_rto, self.config.min_rto), self.config.max_rto)
        self.counters = ArqCounters()
        self.max_outstanding = 0
        self._inflight: dict[int, _Outstanding] = {}
        self._backlog: deque[tuple[bytes, Any]] = deque()
        self._order: deque[tuple[int, int]] = deque()  # (tx index, seq), in sending order
        self._tx_count = 0
        self._largest_acked_tx = -1
        self._parked: set[int] = set()
        self._timer: float | None = None
        self._out: list[SrSenderEvent] = []

    # -- public ----------------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        return len(self._inflight)

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        return not self._inflight and not self._backlog

    def send(self, data: bytes, handle: Any = None, *, now: float) -> list[SrSenderEvent]:
        if len(data) > 0xFFFF:
            raise ConfigError(f"SDU of {len(data)} octets exceeds 65535", key="data")
        self._backlog.append((bytes(data), handle))
        self._pump(now)
        return self._flush()

    def receive_ack(self, frame: bytes | SrAck, *, now: float) -> list[SrSenderEvent]:
        """Process an ack frame (bytes are decoded; a data frame here is a DecodeError)."""
        ack = decode_sr_frame(frame) if isinstance(frame, bytes | bytearray) else frame
        if not isinstance(ack, SrAck):
            raise DecodeError("expected an ack frame", layer=LAYER, field="kind", offset=0)
        self.counters.acks_received += 1
        self._on_ack(ack, now)
        self._pump(now)
        return self._flush()

    def next_deadline(self) -> float | None:
        """Expiry of the retransmission timer, or None when it is not running."""
        return self._timer

    def on_timer(self, now: float) -> list[SrSenderEvent]:
        """RTO expiry (RFC 6298 §5.4-5.6): every frame in flight for at least RTO is
        retransmitted (``fec``: only the oldest, the others are parked), the RTO backs off
        (x ``rto_backoff``, up to ``max_rto``) and the timer restarts."""
        if self._timer is None or now < self._timer:
            return []
        expired = sorted((o for o in self._inflight.values()
                          if not o.parked and o.last_sent + self.rto <= now),
                         key=lambda o: o.seq)
        if not expired:  # the timer ran from an ack; the frames in flight are younger
            front = self._front()
            self._timer = None if front is None else front.last_sent + self.rto
            return []
        self.counters.timeouts += 1
        if self.config.fec:
            for o in expired[1:]:
                o.parked = True
                self._parked.add(o.seq)
            expired = expired[:1]
        self.rto = min(self.rto * self.config.rto_backoff, self.config.max_rto)
        for o in expired:
            self._retransmit(o, now)
        self._timer = now + self.rto
        return self._flush()

    def abort(self) -> list[SrSenderEvent]:
        """Give up everything: an :class:`Undelivered` for every SDU in flight or queued."""
        for seq in sorted(self._inflight):
            o = self._inflight[seq]
            self._out.append(Undelivered(o.handle, seq, "aborted"))
        seq = self.next_seq
        for _, handle in self._backlog:
            self._out.append(Undelivered(handle, seq, "aborted before transmission"))
            seq += 1
        self.counters.undelivered += len(self._inflight) + len(self._backlog)
        self._inflight.clear()
        self._backlog.clear()
        self._order.clear()
        self._parked.clear()
        self._timer = None
        self.base = self.next_seq
        return self._flush()

    # -- internals ---------------------------------------------------------------------------
    def _flush(self) -> list[SrSenderEvent]:
        out, self._out = self._out, []
        return out

    def _front(self) -> _Outstanding | None:
        order = self._order
        while order:
            tx, seq = order[0]
            o = self._inflight.get(seq)
            if o is None or o.last_tx != tx or o.parked:
                order.popleft()
                continue
            return o
        return None

    def _emit(self, o: _Outstanding, retransmission: bool) -> None:
        frame = SrData(o.seq, o.data, retransmission).encode()
        self.counters.frames_sent += 1
        self.counters.bytes_sent += len(frame)
        if retransmission:
            self.counters.retransmissions += 1
        self._out.append(TransmitSrFrame(frame, SrFrameKind.DATA, o.seq, retransmission))

    def _pump(self, now: float) -> None:
        window = self.config.window
        while self._backlog and self.next_seq - self.base < window:
            data, handle = self._backlog.popleft()
            seq = self.next_seq
            self.next_seq += 1
            tx = self._tx_count
            self._tx_count += 1
            o = _Outstanding(seq, data, handle, now, now, tx, tx)
            self._inflight[seq] = o
            self._order.append((tx, seq))
            self._emit(o, retransmission=False)
            if self._timer is None:
                self._timer = now + self.rto
        self.max_outstanding = max(self.max_outstanding, self.next_seq - self.base)

    def _retransmit(self, o: _Outstanding, now: float) -> None:
        tx = self._tx_count
        self._tx_count += 1
        o.last_tx = tx
        o.last_sent = now
        o.transmissions += 1
        o.parked = False
        self._parked.discard(o.seq)
        self._order.append((tx, o.seq))
        self._emit(o, retransmission=True)
        if self._timer is None:
            self._timer = now + self.rto

    def _on_ack(self, ack: SrAck, now: float) -> None:
        cum = unwrap(ack.cumulative_ack, self.base)
        if cum < self.base or cum > self.next_seq:
            return  # an old ack overtaken by newer ones, or garbage: nothing to learn
        newly: list[_Outstanding] = []
        for seq in range(self.base, cum):
            o = self._inflight.pop(seq, None)
            if o is not None:
                newly.append(o)
        for offset in ack.received_offsets():
            o = self._inflight.pop(cum + offset, None)
            if o is not None:
                newly.append(o)
        self.base = min(self._inflight) if self._inflight else self.next_seq
        echo = unwrap(ack.echo_seq, self.base)
        for o in newly:
            self.counters.acknowledged += 1
            self._parked.discard(o.seq)
            self._out.append(Acknowledged(o.handle, o.seq))
            # Loss-detection evidence: the frame that triggered this ack arrived just now, so
            # its latest transmission is credited; any other frame only its first one (an ack
            # cannot tell which copy of a retransmitted frame arrived).
            credited = o.last_tx if o.seq == echo else o.first_tx
            self._largest_acked_tx = max(self._largest_acked_tx, credited)
            if o.seq == echo and o.transmissions == 1:  # Karn's rule
                sample = now - o.last_sent
                delay = ack.ack_delay * ACK_DELAY_UNIT
                self._rtt_sample(sample - delay if sample - delay > 0 else sample)
        if not newly:
            return
        # New data acknowledged: restart the timer (RFC 6298 §5.3).
        self._timer = now + self.rto if self._inflight else None
        # The link delivered something: parked frames (fec mode) go out now.
        if self._parked:
            for seq in sorted(self._parked):
                o = self._inflight.get(seq)
                if o is not None:
                    self._retransmit(o, now)
            self._parked.clear()
        threshold = self.config.reorder_threshold
        lost = [o for o in self._inflight.values()
                if o.last_tx + threshold <= self._largest_acked_tx]
        lost.sort(key=lambda o: o.seq)
        for o in lost:
            self._retransmit(o, now)

    def _rtt_sample(self, r: float) -> None:
        """RFC 6298 §2.2-2.3 (alpha = 1/8, beta = 1/4); a new sample also ends the backoff."""
        cfg = self.config
        if self.srtt is None or self.rttvar is None:
            self.srtt = r
            self.rttvar = r / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        rto = self.srtt + max(cfg.clock_granularity, 4 * self.rttvar)
        self.rto = min(max(rto, cfg.min_rto), cfg.max_rto)


class SrReceiver:
    """Receiving end of the selective-repeat ARQ: buffers out-of-order frames within the
    window, delivers in order (:class:`~linkstack.arq.common.Delivered` with the absolute
    sequence number) and answers with ack frames (:class:`TransmitSrFrame` of kind ACK).
    ``next_expected`` is the cumulative ack (absolute)."""

    def __init__(self, config: SrConfig | None = None) -> None:
        self.config = config or SrConfig()
        self.next_expected = self.config.initial_seq
        self.counters = ArqCounters()
        self._buffer: dict[int, bytes] = {}
        self._unacked = 0
        self._ack_deadline: float | None = None
        self._echo: tuple[int, float] | None = None  # (seq, arrival time) for the next ack
        self._out: list[SrReceiverEvent] = []

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def receive(self, frame: bytes | SrData, *, now: float) -> list[SrReceiverEvent]:
        """Process a data frame (bytes are decoded; an ack frame here is a DecodeError)."""
        data = decode_sr_frame(frame) if isinstance(frame, bytes | bytearray) else frame
        if not isinstance(data, SrData):
            raise DecodeError("expected a data frame", layer=LAYER, field="kind", offset=0)
        seq = unwrap(data.seq, self.next_expected)
        self._echo = (data.seq, now)
        immediate = True
        if seq < self.next_expected or seq in self._buffer:
            self.counters.duplicates_discarded += 1
            self.counters.frames_discarded += 1
        elif seq >= self.next_expected + self.config.window:
            self.counters.frames_discarded += 1
        elif seq == self.next_expected:
            self._buffer[seq] = data.data
            self._deliver()
            self._unacked += 1
            immediate = self._unacked >= self.config.ack_every or bool(self._buffer)
        else:
            self.counters.out_of_order += 1
            self._buffer[seq] = data.data
        if immediate or self.config.max_ack_delay <= 0:
            self._send_ack(now)
        elif self._ack_deadline is None:
            self._ack_deadline = now + self.config.max_ack_delay
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        return self._ack_deadline

    def on_timer(self, now: float) -> list[SrReceiverEvent]:
        if self._ack_deadline is None or now < self._ack_deadline:
            return []
        self._send_ack(now)
        out, self._out = self._out, []
        return out

    def make_ack(self, now: float) -> SrAck:
        """The ack describing the current receive state (also usable for periodic acks)."""
        cum = self.next_expected
        bitmap = b""
        if self._buffer:
            span = max(self._buffer) - cum  # offsets 1..span
            octets = min(math.ceil(span / 8), self.config.max_bitmap_octets)
            bits = bytearray(octets)
            for seq in self._buffer:
                i = seq - cum - 1
                if i < octets * 8:
                    bits[i >> 3] |= 0x80 >> (i & 7)
            bitmap = bytes(bits)
        echo, delay = (cum - 1, 0) if self._echo is None else (
            self._echo[0], round((now - self._echo[1]) / ACK_DELAY_UNIT))
        return SrAck(cum % SEQ_MODULUS, echo % SEQ_MODULUS, max(0, min(delay, 0xFFFF)), bitmap)

    def _deliver(self) -> None:
        while self.next_expected in self._buffer:
            seq = self.next_expected
            self.counters.delivered += 1
            self._out.append(Delivered(self._buffer.pop(seq), seq))
            self.next_expected += 1

    def _send_ack(self, now: float) -> None:
        ack = self.make_ack(now)
        self._unacked = 0
        self._ack_deadline = None
        self._echo = None
        self.counters.acks_sent += 1
        self._out.append(TransmitSrFrame(ack.encode(), SrFrameKind.ACK, self.next_expected))
