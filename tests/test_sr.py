"""Selective repeat: wire format, RTO estimation (RFC 6298), SACK, wrap, window, FEC mode."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.arq.common import Acknowledged, Delivered, Undelivered
from linkstack.arq.sr import (
    SEQ_MODULUS,
    SR_ACK_FRAME,
    SR_DATA_FRAME,
    SrAck,
    SrConfig,
    SrData,
    SrFrameKind,
    SrReceiver,
    SrSender,
    TransmitSrFrame,
    decode_sr_frame,
    unwrap,
)
from linkstack.errors import ConfigError, DecodeError, LinkstackError, TruncatedError

# -- wire format --------------------------------------------------------------------------------


def test_data_frame_vector() -> None:
    # By hand from the declaration: 00 (version) 00 (kind) 1 (retransmission) 000 -> 0x08,
    # then seq 0x01020304, data_length 2, data "hi".
    frame = SrData(0x01020304, b"hi", retransmission=True).encode()
    assert frame == bytes.fromhex("08" "01020304" "0002" "6869")
    assert decode_sr_frame(frame) == SrData(0x01020304, b"hi", True)


def test_ack_frame_vector() -> None:
    # 00 01 0000 -> 0x10; cumulative_ack 5; echo_seq 4; ack_delay 3; bitmap_length 1; A0
    ack = SrAck(5, 4, 3, b"\xa0")
    assert ack.encode() == bytes.fromhex("10" "00000005" "00000004" "0003" "0001" "a0")
    assert decode_sr_frame(ack.encode()) == ack
    assert ack.received_offsets() == [1, 3]  # seq 6 and 8


@given(seq=st.integers(0, SEQ_MODULUS - 1), data=st.binary(max_size=300), retx=st.booleans(),
       fill=st.binary(max_size=8))
def test_data_frame_matches_construct_declaration(seq: int, data: bytes, retx: bool,
                                                  fill: bytes) -> None:
    frame = SrData(seq, data, retx).encode()
    built = SR_DATA_FRAME.build({"header": {"retransmission": retx, "seq": seq,
                                            "data_length": len(data)}, "data": data})
    assert frame == built
    parsed = SR_DATA_FRAME.parse(frame + fill)  # idle fill after the frame is ignored
    assert (parsed.header.seq, parsed.header.retransmission, parsed.data) == (seq, retx, data)
    assert decode_sr_frame(frame + fill) == SrData(seq, data, retx)


@given(cum=st.integers(0, SEQ_MODULUS - 1), echo=st.integers(0, SEQ_MODULUS - 1),
       delay=st.integers(0, 0xFFFF), bitmap=st.binary(max_size=40))
def test_ack_frame_matches_construct_declaration(cum: int, echo: int, delay: int,
                                                 bitmap: bytes) -> None:
    frame = SrAck(cum, echo, delay, bitmap).encode()
    built = SR_ACK_FRAME.build({"header": {"cumulative_ack": cum, "echo_seq": echo,
                                           "ack_delay": delay, "bitmap_length": len(bitmap)},
                                "bitmap": bitmap})
    assert frame == built
    assert decode_sr_frame(frame) == SrAck(cum, echo, delay, bitmap)


@given(buf=st.binary(max_size=64), offset=st.integers(0, 8))
def test_decoder_fuzz_raises_only_linkstack_errors(buf: bytes, offset: int) -> None:
    with contextlib.suppress(LinkstackError):
        decode_sr_frame(buf, offset)


def test_decode_errors_name_field_and_offset() -> None:
    with pytest.raises(TruncatedError) as info:
        decode_sr_frame(bytes.fromhex("00" "00000001" "0005" "6869"))
    assert (info.value.layer, info.value.field) == ("sr", "data_length")
    with pytest.raises(DecodeError) as info:
        decode_sr_frame(bytes.fromhex("40" "00000001" "0000"))
    assert info.value.field == "version"
    with pytest.raises(DecodeError) as info:
        decode_sr_frame(bytes.fromhex("20" "00000001" "0000"))
    assert info.value.field == "kind"
    with pytest.raises(TruncatedError):
        decode_sr_frame(b"")


def test_unwrap_serial_arithmetic() -> None:
    ref = SEQ_MODULUS - 2  # just below the wrap
    assert unwrap(1, ref) == SEQ_MODULUS + 1
    assert unwrap(SEQ_MODULUS - 5, ref) == SEQ_MODULUS - 5
    assert unwrap(3, 2 * SEQ_MODULUS + 10) == 2 * SEQ_MODULUS + 3


# -- engines ------------------------------------------------------------------------------------


def _frames(out: list[Any], kind: SrFrameKind) -> list[TransmitSrFrame]:
    return [x for x in out if isinstance(x, TransmitSrFrame) and x.kind is kind]


def _relay(out: list[Any], peer: Any, now: float, drop: set[int] | None = None) -> list[Any]:
    """Deliver the frames in ``out`` to ``peer`` (except absolute seqs in ``drop``)."""
    result: list[Any] = []
    for f in out:
        if isinstance(f, TransmitSrFrame) and (drop is None or f.seq not in drop):
            if f.kind is SrFrameKind.DATA:
                result += peer.receive(f.data, now=now)
            else:
                result += peer.receive_ack(f.data, now=now)
    return result


def test_rfc6298_estimator_and_karn() -> None:
    cfg = SrConfig(window=8, initial_rto=1.0, min_rto=0.001, clock_granularity=0.001)
    s, r = SrSender(cfg), SrReceiver(cfg)
    out = s.send(b"a", "A", now=0.0)
    assert s.next_deadline() == 1.0
    acks = _relay(out, r, now=0.05)
    _relay(acks, s, now=0.1)
    # first sample R = 0.1: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4 RTTVAR) = 0.3
    assert s.srtt == pytest.approx(0.1) and s.rttvar == pytest.approx(0.05)
    assert s.rto == pytest.approx(0.3)
    out = s.send(b"b", "B", now=1.0)
    _relay(_relay(out, r, now=1.1), s, now=1.2)  # R' = 0.2
    assert s.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.1)
    assert s.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)
    assert s.rto == pytest.approx(s.srtt + 4 * s.rttvar)
    # Karn: a retransmitted frame gives no sample; the timer backs off x2
    s.send(b"c", "C", now=2.0)
    srtt, rto = s.srtt, s.rto
    retx = s.on_timer(2.0 + rto)
    assert [f.retransmission for f in _frames(retx, SrFrameKind.DATA)] == [True]
    assert s.rto == pytest.approx(2 * rto) and s.counters.timeouts == 1
    out = _relay(_relay(retx, r, now=2.0 + rto + 0.05), s, now=2.0 + rto + 0.1)
    assert Acknowledged("C", 2) in out and s.srtt == srtt


def test_ack_delay_is_subtracted_from_the_sample() -> None:
    cfg = SrConfig(ack_every=2, max_ack_delay=0.05, min_rto=0.001)
    s, r = SrSender(cfg), SrReceiver(cfg)
    out = s.send(b"a", 0, now=0.0)
    got = _relay(out, r, now=0.1)
    assert got == [Delivered(b"a", 0)]  # in order, first of two: the ack waits
    assert r.next_deadline() == pytest.approx(0.15)
    acks = r.on_timer(r.next_deadline())
    _relay(acks, s, now=0.25)
    # RTT 0.25 minus the 0.05 the receiver held the ack
    assert s.srtt == pytest.approx(0.2, abs=1e-4)


def test_selective_retransmission_of_the_missing_frame_only() -> None:
    cfg = SrConfig(window=16, reorder_threshold=3)
    s, r = SrSender(cfg), SrReceiver(cfg)
    out = []
    for i in range(8):
        out += s.send(bytes([i]), i, now=0.0)
    got = _relay(out, r, now=0.01, drop={2})
    delivered = [d.seq for d in got if isinstance(d, Delivered)]
    assert delivered == [0, 1]  # 3..7 wait in the receive buffer
    assert r.buffered == 5 and r.counters.out_of_order == 5
    acks = _frames(got, SrFrameKind.ACK)
    last = decode_sr_frame(acks[-1].data)
    assert isinstance(last, SrAck) and last.cumulative_ack == 2
    assert last.received_offsets() == [1, 2, 3, 4, 5]
    back = _relay(acks, s, now=0.02)
    retx = _frames(back, SrFrameKind.DATA)
    assert [(f.seq, f.retransmission) for f in retx] == [(2, True)]
    got = _relay(retx, r, now=0.03)
    assert [d.seq for d in got if isinstance(d, Delivered)] == [2, 3, 4, 5, 6, 7]
    _relay(_frames(got, SrFrameKind.ACK), s, now=0.04)
    assert s.idle and s.counters.retransmissions == 1


def test_window_and_receiver_bounds() -> None:
    cfg = SrConfig(window=4)
    s, r = SrSender(cfg), SrReceiver(cfg)
    out = []
    for i in range(10):
        out += s.send(bytes([i]), i, now=0.0)
    assert len(_frames(out, SrFrameKind.DATA)) == 4 and s.backlog == 6
    assert s.outstanding == 4
    # a frame beyond the receive window is discarded (and acknowledged)
    got = r.receive(SrData(4, b"x").encode(), now=0.0)
    assert r.counters.frames_discarded == 1 and r.buffered == 0
    assert len(_frames(got, SrFrameKind.ACK)) == 1
    # a duplicate of a delivered frame is discarded too
    r.receive(SrData(0, b"\x00").encode(), now=0.0)
    r.receive(SrData(0, b"\x00").encode(), now=0.0)
    assert r.counters.duplicates_discarded == 1 and r.counters.delivered == 1


def test_sequence_numbers_cross_the_32_bit_wrap() -> None:
    cfg = SrConfig(window=8, initial_seq=SEQ_MODULUS - 5)
    s, r = SrSender(cfg), SrReceiver(cfg)
    delivered: list[Delivered] = []
    now = 0.0
    for i in range(20):
        out = s.send(i.to_bytes(2, "big"), i, now=now)
        got = _relay(out, r, now=now, drop={SEQ_MODULUS - 1} if i == 4 else None)
        delivered += [d for d in got if isinstance(d, Delivered)]
        back = _relay(got, s, now=now)
        got = _relay(back, r, now=now)  # retransmissions, if any
        delivered += [d for d in got if isinstance(d, Delivered)]
        _relay(got, s, now=now)
        now += 0.01
    for _ in range(5):  # let the timer recover the tail
        now = max(now, s.next_deadline() or now)
        got = _relay(s.on_timer(now), r, now=now)
        delivered += [d for d in got if isinstance(d, Delivered)]
        _relay(got, s, now=now)
    assert [int.from_bytes(d.data, "big") for d in delivered] == list(range(20))
    assert [d.seq for d in delivered] == list(range(SEQ_MODULUS - 5, SEQ_MODULUS + 15))
    assert s.idle


def test_fec_mode_probes_with_the_oldest_frame() -> None:
    for fec in (False, True):
        cfg = SrConfig(window=8, initial_rto=0.5, fec=fec)
        s, r = SrSender(cfg), SrReceiver(cfg)
        for i in range(5):
            s.send(bytes([i]), i, now=0.0)  # all lost: an outage
        retx = s.on_timer(0.5)
        seqs = [f.seq for f in _frames(retx, SrFrameKind.DATA)]
        assert seqs == ([0] if fec else [0, 1, 2, 3, 4])
        if fec:
            assert s.next_deadline() == pytest.approx(1.5)  # backed off, probe only
            # the probe gets through: the parked frames go out at once
            back = _relay(_relay(retx, r, now=0.6), s, now=0.7)
            assert [f.seq for f in _frames(back, SrFrameKind.DATA)] == [1, 2, 3, 4]


def test_abort_reports_every_sdu_by_seq_and_handle() -> None:
    s = SrSender(SrConfig(window=2))
    for i in range(4):
        s.send(b"x", f"h{i}", now=0.0)
    out = s.abort()
    assert [(u.handle, u.seq) for u in out if isinstance(u, Undelivered)] == [
        ("h0", 0), ("h1", 1), ("h2", 2), ("h3", 3)]
    assert s.idle and s.next_deadline() is None


def test_stale_ack_is_ignored() -> None:
    cfg = SrConfig(window=8)
    s, r = SrSender(cfg), SrReceiver(cfg)
    out = []
    for i in range(3):
        out += s.send(b"x", i, now=0.0)
    acks = _frames(_relay(out, r, now=0.01), SrFrameKind.ACK)
    _relay(acks[-1:], s, now=0.02)
    assert s.idle
    assert _relay(acks[:1], s, now=0.03) == []  # an old ack arriving late


def test_config_errors() -> None:
    for kw in ({"window": 0}, {"window": 2**31}, {"min_rto": 0}, {"min_rto": 2, "max_rto": 1},
               {"initial_rto": 0}, {"reorder_threshold": 0}, {"ack_every": 0},
               {"max_ack_delay": -1}, {"max_bitmap_octets": 70000}, {"rto_backoff": 0.5},
               {"initial_seq": -1}):
        with pytest.raises(ConfigError):
            SrConfig(**kw)
    with pytest.raises(DecodeError):
        SrSender().receive_ack(SrData(0, b"").encode(), now=0.0)
    with pytest.raises(DecodeError):
        SrReceiver().receive(SrAck(0, 0).encode(), now=0.0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), window=st.integers(1, 16),
       drops=st.sets(st.integers(0, 60), max_size=15), seed=st.integers(0, 2**16))
def test_direct_lossy_exchange_delivers_in_order(n: int, window: int, drops: set[int],
                                                 seed: int) -> None:
    """Drop the *transmissions* whose index is in ``drops`` (data and acks alike): every SDU
    still arrives once, in order, and the sender never has more than ``window`` in flight."""
    cfg = SrConfig(window=window, initial_rto=0.1, min_rto=0.01, max_rto=0.2)
    s, r = SrSender(cfg), SrReceiver(cfg)
    delivered: list[int] = []
    pending: list[tuple[float, TransmitSrFrame]] = []
    tx_index = 0
    now = 0.0

    def queue(out: list[Any]) -> None:
        nonlocal tx_index
        for f in out:
            if isinstance(f, TransmitSrFrame):
                if tx_index not in drops:
                    pending.append((now + 0.01, f))
                tx_index += 1
            elif isinstance(f, Delivered):
                delivered.append(int.from_bytes(f.data, "big"))

    for i in range(n):
        queue(s.send(i.to_bytes(2, "big"), i, now=now))
    for _ in range(5000):
        if s.idle and len(delivered) == n:
            break
        assert s.outstanding <= window
        deadline = min([t for t, _ in pending] + [d for d in (s.next_deadline(),
                                                               r.next_deadline()) if d])
        now = max(now, deadline)
        due = [p for p in pending if p[0] <= now]
        pending = [p for p in pending if p[0] > now]
        for _, f in due:
            queue(r.receive(f.data, now=now) if f.kind is SrFrameKind.DATA
                  else s.receive_ack(f.data, now=now))
        queue(s.on_timer(now))
        queue(r.on_timer(now))
    assert delivered == list(range(n))
    assert s.max_outstanding <= window
