"""SDLS properties at volume (issue 15): forgeries and replays are always rejected, reordered
frames inside the window are accepted exactly once.

- any bit flipped in the authenticated part of a secured frame: rejected (BAD_MAC once the
  flip is past the SPI and the FECF is made right again);
- a random MAC: rejected as BAD_MAC;
- a frame delivered again (replay), or one older than the window: rejected as REPLAY (or as
  BAD_MAC when only the low octets of the counter travel and a frame from further back than
  the window cannot be told from one of the next block);
- frames reordered on the link, inside the window, with replays mixed in: each accepted
  exactly once, the SA's counter ends at the highest one.

Under CI (the environment variable ``CI`` set, as tests/conftest.py reads it) these tests,
with the SDLS property tests of tests/test_sdls_engine.py, run more than 100 000 hypothesis
cases in total (:data:`CI_CASES`); a normal run takes a few hundred of each.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_sdls_engine import (
    KEY128,
    KEY256,
    Case,
    engines_for,
    fix_fecf,
    make_pair,
)

from linkstack.frames.aos import AosChannelConfig, AosFrame
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.frames.tm import FHP_NO_PACKET_START, TmChannelConfig, TmFrame
from linkstack.frames.uslp import POINTER_NONE, UslpChannelConfig, UslpFrame
from linkstack.sdls import (
    FrameAccepted,
    FrameType,
    RejectReason,
    SdlsEngine,
    SdlsRejected,
    ServiceType,
)
from linkstack.sdls.layout import locate
from linkstack.sdls.sa import REORDER_SPAN_MAX, ReplayWindow

CI = bool(os.environ.get("CI"))


def examples(dev: int, ci: int) -> int:
    """``ci`` hypothesis cases under CI, ``dev`` otherwise."""
    return ci if CI else dev


CI_CASES = {
    "test_any_flipped_bit_in_the_authenticated_part_is_rejected": 50_000,
    "test_a_random_mac_is_rejected": 25_000,
    "test_replayed_and_too_old_frames_are_rejected": 6_000,
    "test_reordered_frames_inside_the_window_are_accepted_exactly_once": 12_000,
}
"""Cases of this file's tests under CI (test_sdls_engine.py adds its own, see the last test)."""


def _rejected(result: object, reason: RejectReason | None = None) -> SdlsRejected:
    assert isinstance(result, SdlsRejected), result
    if reason is not None:
        assert result.reason is reason, result
    return result


# ---------------------------------------------------------------------------------------------
# forgeries, on prepared frames (a case costs one process(): 10^5 of them run in seconds)


def _tc(segmented: bool, fecf: bool) -> Case:
    channel = TcChannelConfig(has_fecf=fecf, segmented_vcids=frozenset({5} if segmented else ()))
    return Case(FrameType.TC, channel, 0x155, 5, lambda cfg: TcFrame(
        0x155, 5, 77, b"set heater 2 on", map_id=3 if segmented else None).encode(cfg))


def _tm(fecf: bool) -> Case:
    channel = TmChannelConfig(frame_length=96, has_fecf=fecf)

    def build(cfg: Any) -> bytes:
        n = cfg.data_field_capacity(ocf=True, secondary_header_length=4)
        return TmFrame(0x2A, 3, 9, 4, FHP_NO_PACKET_START, bytes(range(n)), b"\x01\x02\x03\x04",
                       b"\xaa\xbb\xcc").encode(cfg)
    return Case(FrameType.TM, channel, 0x2A, 3, build)


def _aos() -> Case:
    channel = AosChannelConfig(frame_length=96, has_fecf=True, has_fhec=True,
                               insert_zone_length=2, ocf_vcids=frozenset({4}))

    def build(cfg: Any) -> bytes:
        n = cfg.data_field_capacity(4)
        return AosFrame(0x41, 4, 1234, bytes(range(n)), FHP_NO_PACKET_START, None, b"iz",
                        b"\x00\x01\x02\x03").encode(cfg)
    return Case(FrameType.AOS, channel, 0x41, 4, build)


def _uslp(fixed: bool, fecf: int) -> Case:
    channel = UslpChannelConfig(frame_length=120 if fixed else None, fecf_size=fecf,
                                insert_zone_length=1)

    def build(cfg: Any) -> bytes:
        if cfg.frame_length is not None:
            n = cfg.data_field_capacity(vc_frame_count_length=2, ocf=True)
            return UslpFrame(0x2A, 1, 2, bytes(range(n)), 0, 0, POINTER_NONE,
                             vc_frame_count_length=2, vc_frame_count=300, insert_zone=b"z",
                             ocf=b"\x00\x01\x02\x03").encode(cfg)
        return UslpFrame(0x2A, 1, 2, b"an SR data frame", vc_frame_count_length=1,
                         vc_frame_count=5, insert_zone=b"z").encode(cfg)
    return Case(FrameType.USLP, channel, 0x2A, 1, build)


CHANNELS = (_tc(False, True), _tc(True, False), _tm(True), _tm(False), _aos(),
            _uslp(False, 2), _uslp(True, 4), _uslp(False, 0))
SAS: tuple[tuple[dict[str, Any], bytes], ...] = (
    ({"service": "authenticated_encryption", "algorithm": "aes-gcm"}, KEY256),
    ({"service": "authenticated_encryption", "algorithm": "aes-gcm", "mac_length": 8,
      "iv_transmitted_length": 4, "iv": 0x1FD, "arsn_length": 2, "arsn": 7,
      "pad_length_field_length": 1}, KEY128),
    ({"service": "authentication", "algorithm": "aes-gcm", "mac_length": 12}, KEY128),  # GMAC
    ({"service": "authentication", "algorithm": "aes-cmac", "iv_length": 0,
      "arsn_length": 4, "arsn_transmitted_length": 2, "arsn": 0x1FFFF}, KEY256),
    ({"service": "authentication", "algorithm": "hmac-sha256", "iv_length": 0,
      "arsn_length": 2, "mac_length": 32}, KEY256),
)


@dataclass
class Prepared:
    """One secured frame, the engine that would accept it, where its parts are."""

    rx: SdlsEngine
    secured: bytes
    data_start: int
    data_end: int
    fecf: int
    mac_length: int
    state: tuple[int, int]


@functools.cache
def prepared(channel: int, sa: int) -> Prepared:
    case, (kw, key) = CHANNELS[channel], SAS[sa]
    kw = {"arsn_window": 4, **kw}
    tx, rx = engines_for(case, (kw, key))
    secured = tx.apply(case.build(tx.clear_channel(7)))
    geo = locate(secured, case.channel)
    sa_rx = rx.sadb[7]
    return Prepared(rx, secured, geo.data_start, geo.data_end, geo.fecf_size,
                    kw.get("mac_length", 16), (sa_rx.iv, sa_rx.arsn))


def _check_untouched(p: Prepared) -> None:
    """Nothing was accepted and the receiver's state did not move."""
    sa = p.rx.sadb[7]
    assert p.rx.counters.accepted == 0 and (sa.iv, sa.arsn) == p.state


PREPARED = st.tuples(st.integers(0, len(CHANNELS) - 1), st.integers(0, len(SAS) - 1))


@settings(max_examples=examples(500, CI_CASES[
    "test_any_flipped_bit_in_the_authenticated_part_is_rejected"]), deadline=None)
@given(which=PREPARED, bit=st.integers(0, 1 << 16), fix=st.booleans())
def test_any_flipped_bit_in_the_authenticated_part_is_rejected(which: tuple[int, int], bit: int,
                                                               fix: bool) -> None:
    p = prepared(*which)
    # the authenticated part: the frame from its first bit to the end of the MAC (the OCF
    # and the FECF come after the Security Trailer)
    bit %= 8 * p.data_end
    bad = bytearray(p.secured)
    bad[bit // 8] ^= 0x80 >> (bit % 8)
    if fix or not p.fecf:
        result = _rejected(p.rx.process(fix_fecf(bytes(bad), p.fecf)))
        if bit // 8 >= p.data_start + 2:  # IV, ARSN, Pad Length, data, MAC
            assert result.reason is RejectReason.BAD_MAC, result
    else:  # as received, the FECF catches it first (or the length does)
        assert _rejected(p.rx.process(bytes(bad))).reason in (RejectReason.BAD_FECF,
                                                              RejectReason.BAD_LENGTH)
    _check_untouched(p)


@settings(max_examples=examples(500, CI_CASES["test_a_random_mac_is_rejected"]),
          deadline=None)
@given(which=PREPARED, mac=st.binary(min_size=32, max_size=32))
def test_a_random_mac_is_rejected(which: tuple[int, int], mac: bytes) -> None:
    p = prepared(*which)
    start = p.data_end - p.mac_length
    mac = mac[:p.mac_length]
    if mac == p.secured[start:p.data_end]:  # drew the real one (2^-64 at best)
        return
    forged = p.secured[:start] + mac + p.secured[p.data_end:]
    _rejected(p.rx.process(fix_fecf(forged, p.fecf)), RejectReason.BAD_MAC)
    _check_untouched(p)


def test_the_prepared_frames_are_accepted() -> None:
    """Each prepared frame is genuine: a fresh copy of its receiver accepts it (so the
    rejections above are the forgeries', not a broken frame's)."""
    for channel, sa in itertools.product(range(len(CHANNELS)), range(len(SAS))):
        p = prepared(channel, sa)
        case, (kw, key) = CHANNELS[channel], SAS[sa]
        _, rx = engines_for(case, ({"arsn_window": 4, **kw}, key))
        result = rx.process(p.secured)
        assert isinstance(result, FrameAccepted), (channel, sa, result)
        assert rx.sadb[7].iv + rx.sadb[7].arsn > sum(p.state)


# ---------------------------------------------------------------------------------------------
# replays, old frames, reordering

TM = TmChannelConfig(frame_length=64, has_fecf=True)
TC = TcChannelConfig(has_fecf=True)

COUNTERS = st.sampled_from([
    # (label, SA parameters): the counter the window checks, whole or in part on the wire
    ("gcm-iv", {"service": ServiceType.AUTHENTICATED_ENCRYPTION, "algorithm": "aes-gcm"}),
    ("gcm-iv-1-octet", {"service": ServiceType.AUTHENTICATED_ENCRYPTION,
                        "algorithm": "aes-gcm", "iv_transmitted_length": 1}),
    ("hmac-arsn", {"service": ServiceType.AUTHENTICATION, "algorithm": "hmac-sha256",
                   "iv_length": 0, "arsn_length": 4}),
    ("cmac-arsn-1-octet", {"service": ServiceType.AUTHENTICATION, "algorithm": "aes-cmac",
                           "iv_length": 0, "arsn_length": 3, "arsn_transmitted_length": 1}),
    ("gcm-iv-and-arsn", {"service": ServiceType.AUTHENTICATED_ENCRYPTION,
                         "algorithm": "aes-gcm", "arsn_length": 2}),
])


def _pair(counter: dict[str, Any], window: int, frame: str, start: int,
          ) -> tuple[SdlsEngine, SdlsEngine, int]:
    """Two engines (TM or TC channel) with an SA counting from ``start``; the SPI."""
    kw: dict[str, Any] = {"spi": 9, "frame": frame, "scid": 42, "vcids": {0},
                          "arsn_window": window, **counter}
    if kw.get("iv_length", 12):
        kw["iv"] = start
    if kw.get("arsn_length"):
        kw["arsn"] = start
    key = KEY256 if kw["algorithm"] != "aes-gcm" or start % 2 else KEY128
    tx, rx = make_pair(kw, key, TM if frame == "tm" else TC)
    return tx, rx, 9


def _frames(tx: SdlsEngine, n: int, frame: str) -> list[bytes]:
    cfg = tx.clear_channel(9)
    out = []
    for i in range(n):
        if frame == "tm":
            assert isinstance(cfg, TmChannelConfig)
            data = bytes([i % 256]) * cfg.data_field_capacity()
            clear = TmFrame(42, 0, i % 256, i % 256, FHP_NO_PACKET_START, data).encode(cfg)
        else:
            clear = TcFrame(42, 0, i % 256, bytes([i % 256]) * 9).encode(cfg)
        out.append(tx.apply(clear))
    return out


@settings(max_examples=examples(200, CI_CASES["test_replayed_and_too_old_frames_are_rejected"]),
          deadline=None)
@given(counter=COUNTERS, window=st.integers(2, 32), frame=st.sampled_from(["tm", "tc"]),
       start=st.integers(0, 300), data=st.data())
def test_replayed_and_too_old_frames_are_rejected(counter: tuple[str, dict[str, Any]],
                                                  window: int, frame: str, start: int,
                                                  data: st.DataObject) -> None:
    tx, rx, spi = _pair(counter[1], window, frame, start)
    n = window + data.draw(st.integers(1, 8))
    frames = _frames(tx, n, frame)
    # one frame held back, then `window` or more after it delivered (the jump over it is 2,
    # inside a window of 2 or more)
    withheld = data.draw(st.integers(0, n - 1 - window))
    delivered = [i for i in range(n) if i != withheld]
    for i in delivered:
        assert isinstance(rx.process(frames[i]), FrameAccepted), i
    top = rx.sadb[spi].iv, rx.sadb[spi].arsn
    # A counter whose high octets do not travel cannot tell a frame from further back than
    # the window from one of the next block: it is rebuilt as the latter, and fails the MAC.
    whole = "octet" not in counter[0]
    old = {RejectReason.REPLAY} if whole else {RejectReason.REPLAY, RejectReason.BAD_MAC}
    # a replay of any frame accepted: rejected, nothing moves
    again = data.draw(st.sampled_from(delivered))
    reason = _rejected(rx.process(frames[again])).reason
    assert reason is RejectReason.REPLAY or (reason in old and n - 1 - again >= window)
    # the withheld frame is `window` or more behind the newest: too old, never accepted
    assert _rejected(rx.process(frames[withheld])).reason in old
    assert (rx.sadb[spi].iv, rx.sadb[spi].arsn) == top
    assert rx.counters.accepted == n - 1
    assert sum(rx.counters.rejected.values()) == 2


@settings(max_examples=examples(
    200, CI_CASES["test_reordered_frames_inside_the_window_are_accepted_exactly_once"]),
    deadline=None)
@given(counter=COUNTERS, window=st.integers(1, 100), frame=st.sampled_from(["tm", "tc"]),
       start=st.integers(0, 300), n=st.integers(1, 30), seed=st.integers(0, 2**32 - 1),
       replays=st.integers(0, 8))
def test_reordered_frames_inside_the_window_are_accepted_exactly_once(
        counter: tuple[str, dict[str, Any]], window: int, frame: str, start: int, n: int,
        seed: int, replays: int) -> None:
    tx, rx, spi = _pair(counter[1], window, frame, start)
    frames = _frames(tx, n, frame)
    rnd = random.Random(seed)
    # each frame moved back by less than the window: when it arrives, it is less than
    # `window` behind the newest frame received and at most `window` ahead of it
    jitter = [rnd.randrange(window) for _ in range(n)]
    order = sorted(range(n), key=lambda i: (i + jitter[i], i))
    schedule = list(order)
    for _ in range(replays):  # copies of frames already delivered, arriving late
        at = rnd.randrange(1, len(schedule) + 1)
        schedule.insert(at, rnd.choice(schedule[:at]))
    assert window <= REORDER_SPAN_MAX
    whole = "octet" not in counter[0]  # else a copy from further back than the window may
    seen: set[int] = set()              # be rebuilt as a frame of the next block: BAD_MAC
    for i in schedule:
        result = rx.process(frames[i])
        if i in seen:
            reason = _rejected(result).reason
            assert reason is RejectReason.REPLAY or (
                not whole and reason is RejectReason.BAD_MAC and max(seen) - i >= window)
        else:
            assert isinstance(result, FrameAccepted), (i, result)
            seen.add(i)
    assert seen == set(range(n))
    assert rx.counters.accepted == n
    assert sum(rx.counters.rejected.values()) == len(schedule) - n
    sa = rx.sadb[spi]
    assert (sa.iv, sa.arsn) == (tx.sadb[spi].iv, tx.sadb[spi].arsn)  # the highest, not the last


@settings(max_examples=examples(300, 3_000), deadline=None)
@given(ahead=st.integers(1, 300), span=st.integers(1, 200), top=st.integers(0, 10**6),
       steps=st.lists(st.integers(-400, 400), max_size=60))
def test_replay_window_is_the_set_of_accepted_values(ahead: int, span: int, top: int,
                                                     steps: list[int]) -> None:
    """The ring of bits against a plain set: accepted iff ahead by at most ``ahead``, or
    behind by less than ``span`` and not accepted yet (everything up to the start counts
    as accepted); jumps of any size, across the ring's end, clear exactly the skipped
    values."""
    window = ReplayWindow(top, ahead, span)
    accepted: set[int] = set()
    highest = top
    for step in steps:
        value = highest + step
        if value < 0:
            continue
        d = value - highest
        expect = d <= ahead if d > 0 else (-d < span and value not in accepted
                                           and value > top)
        assert window.check(value) is expect, (value, highest)
        if expect:
            window.accept(value)
            accepted.add(value)
            highest = max(highest, value)
        assert window.top == highest
        assert window.seen(value) is (value in accepted or value <= top
                                      or highest - value >= span)


def test_replay_window_is_capped() -> None:
    from linkstack.sdls import SecurityAssociation

    sa = SecurityAssociation(spi=1, frame="tm", scid=1, vcids={0},
                             service="authenticated_encryption", algorithm="aes-gcm",
                             arsn_window=10**9, key_id=1)
    window = sa.replay_window("iv")
    assert window.ahead == 10**9 and window.span == REORDER_SPAN_MAX
    window.accept(10**8)  # a jump beyond the ring clears it whole
    assert window.check(10**8 - 1) and not window.check(10**8 - REORDER_SPAN_MAX)
    assert sa.replay_window("iv") is not window  # sa.iv did not follow: a new window
    sa.iv = 10**8
    assert sa.replay_window("iv").check(10**8 - 1) is False  # a new window knows nothing


def test_ci_runs_more_than_100k_sdls_property_cases() -> None:
    from test_sdls_engine import CI_CASES as ENGINE_CI_CASES

    assert sum(CI_CASES.values()) + sum(ENGINE_CI_CASES.values()) >= 100_000
    for name in CI_CASES:
        assert name in globals(), name
