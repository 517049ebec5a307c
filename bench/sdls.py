"""SDLS throughput: ApplySecurity and ProcessSecurity of full-size frames, beside a baseline.

The headline (one core, best of 5 runs, MB = 10^6 octets of secured frames)::

    crc-only protect: <X> MB/s      the FECF computed over each frame: the work a channel
    crc-only verify:  <X> MB/s      does per frame without SDLS (the baseline)
    sdls protect: <X> MB/s          SdlsEngine.apply(frame, spi=1), 1115-octet TM frames,
                                    AES-256-GCM (what a hop's SdlsLayer.protect calls)
    sdls verify: <X> MB/s           SdlsEngine.process of the same frames

The SA is the one that secures the downlink of ``linkstack run secure``
(sims/scenarios/sdls/secure-sa.toml, SPI 1): authenticated encryption, AES-256-GCM, a
12-octet IV transmitted whole, a 16-octet MAC, no ARSN, 30 octets of overhead. The target is
125 MB/s each (about 112 000 frames/s, 9 µs per frame). ``verify`` runs the CRC-16 twice per
frame (it checks the received FECF, then computes the restored clear frame's one), so it can
never be faster than half the crc-only figure, before AES-GCM and the checks; ``protect`` runs
it once. Then, per frame type, apply + process together for the other algorithms
(frames/s), against the same baseline:

    crc-only          the FECF computed on send and checked on receive, nothing else
    aes-256-gcm       authenticated encryption (12-octet IV, 4-octet ARSN, 16-octet MAC)
    aes-256-cmac      same SA shape, authentication only
    hmac-sha256       same SA shape, authentication only

The TC frames are 1024 octets, the largest a TC frame can be (10-bit Frame Length field,
232.0-B-4 §4.1.2.7); the TM frames are the stack's default 1115 octets.
Run: ``python bench/sdls.py [--frames N] [--headline]``. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from linkstack.codecs.crc import compute_fecf, crc16_ccitt
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.frames.tm import FHP_NO_PACKET_START, TmChannelConfig, TmFrame
from linkstack.sdls import (
    FrameAccepted,
    Key,
    KeyRing,
    SaDatabase,
    SaState,
    SdlsEngine,
    SecurityAssociation,
)

KEY = bytes(range(32))
TM_FRAME_LENGTH = 1115
BATCH = 256
VARIANTS = {
    "aes-256-gcm": ("authenticated_encryption", "aes-gcm", 12),
    "aes-256-cmac": ("authentication", "aes-cmac", 0),
    "hmac-sha256": ("authentication", "hmac-sha256", 0),
}


def _best(fn: Callable[[], None], repeat: int = 5,
          setup: Callable[[], None] | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _db(frame: str, service: str, algorithm: str, iv_length: int, arsn_length: int = 4,
        window: int = 1) -> SaDatabase:
    sa = SecurityAssociation(spi=1, frame=frame, scid=0x55, vcids={0}, service=service,
                             algorithm=algorithm, iv_length=iv_length,
                             arsn_length=arsn_length, arsn_window=window, mac_length=16,
                             key_id=1, state=SaState.OPERATIONAL)
    return SaDatabase(KeyRing([Key(1, KEY)]), [sa])


def _tm_frame(cfg: Any) -> bytes:
    cap = cfg.data_field_capacity()
    return TmFrame(0x55, 0, 0, 0, FHP_NO_PACKET_START, (bytes(range(256)) * 5)[:cap]
                   ).encode(cfg)


def headline(n: int, batch: int = BATCH) -> dict[str, float]:
    """MB/s of crc-only and SDLS protect / verify on 1115-octet TM frames (AES-256-GCM).

    The frames go through in batches of ``batch`` (about 285 kB: in cache, as a frame just
    built by the layer above or just decoded by the coding chain is): each batch is secured
    (timed: protect) and then verified by the receiving engine (timed: verify).
    """
    channel = TmChannelConfig(frame_length=TM_FRAME_LENGTH, has_fecf=True)
    mb = n * TM_FRAME_LENGTH / 1e6
    rounds = max(1, n // batch)
    n = rounds * batch
    mb = n * TM_FRAME_LENGTH / 1e6
    plain = [_tm_frame(channel) for _ in range(batch)]
    bodies = [f[:-2] for f in plain]

    def crc_protect() -> None:
        for _ in range(rounds):
            for body in bodies:
                body + compute_fecf(body)

    def crc_verify() -> None:
        for _ in range(rounds):
            for f in plain:
                if crc16_ccitt(f):
                    raise AssertionError("FECF")

    def engine() -> SdlsEngine[Any]:
        return SdlsEngine(_db("tm", "authenticated_encryption", "aes-gcm", 12, arsn_length=0,
                              window=65536), channel)

    clear = [_tm_frame(engine().clear_channel(1)) for _ in range(batch)]
    best = {"protect": float("inf"), "verify": float("inf")}
    clock = time.perf_counter
    for _ in range(5):
        tx, rx = engine(), engine()
        apply, process = tx.apply, rx.process
        t_protect = t_verify = 0.0
        for _ in range(rounds):
            t0 = clock()
            secured = [apply(f, spi=1) for f in clear]  # as the hop's SdlsLayer does
            t1 = clock()
            for f in secured:
                if type(process(f)) is not FrameAccepted:
                    raise AssertionError("rejected")
            t2 = clock()
            t_protect += t1 - t0
            t_verify += t2 - t1
        assert rx.counters.accepted == n and all(len(f) == TM_FRAME_LENGTH for f in secured)
        best["protect"] = min(best["protect"], t_protect)
        best["verify"] = min(best["verify"], t_verify)
    return {
        "crc-only protect": mb / _best(crc_protect),
        "crc-only verify": mb / _best(crc_verify),
        "sdls protect": mb / best["protect"],
        "sdls verify": mb / best["verify"],
    }


def _run(label: str, channel: Any, build: Callable[[Any], bytes], frame: str, n: int) -> None:
    # the baseline: FECF computed on send, checked on receive, over a same-size frame
    plain = [build(channel) for _ in range(n)]
    bodies = [f[:-2] for f in plain]

    def crc_only() -> None:
        for body in bodies:
            out = body + compute_fecf(body)
            if crc16_ccitt(out):
                raise AssertionError("FECF")

    t_base = _best(crc_only)
    size = len(plain[0])
    print(f"{label}: {n} frames of {size} octets, apply + process")
    print(f"  {'crc-only':<14} {n / t_base:>10.0f} frames/s   1.00x")
    for name, variant in VARIANTS.items():
        t, accepted = _time_sdls(frame, variant, channel, build, n)
        assert accepted == 5 * n
        print(f"  {name:<14} {n / t:>10.0f} frames/s   {t / t_base:.2f}x the baseline time")


def _time_sdls(frame: str, variant: tuple[str, str, int], channel: Any,
               build: Callable[[Any], bytes], n: int) -> tuple[float, int]:
    """Best time of apply + process over ``n`` frames, and the frames accepted in all runs."""
    tx = SdlsEngine(_db(frame, *variant), channel)
    rx = SdlsEngine(_db(frame, *variant), channel)
    clear_cfg = tx.clear_channel(1)
    clear = [build(clear_cfg) for _ in range(n)]
    apply, process = tx.apply, rx.process

    def sdls() -> None:
        for f in clear:
            if type(process(apply(f))) is not FrameAccepted:
                raise AssertionError("rejected")

    return _best(sdls), rx.counters.accepted


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--frames", type=int, default=25600)
    ap.add_argument("--headline", action="store_true",
                    help="only the protect / verify MB/s lines")
    args = ap.parse_args()
    n = args.frames

    print(f"{TM_FRAME_LENGTH}-octet TM frames, AES-256-GCM (SA of the secure scenario's "
          f"downlink), one core, best of 5 runs of {n} frames:")
    for name, value in headline(n).items():
        print(f"{name}: {value:.1f} MB/s")
    if args.headline:
        return
    print()

    tc = TcChannelConfig(has_fecf=True)

    def tc_frame(cfg: Any) -> bytes:  # the largest frame cfg allows (header 5, FECF 2)
        data = (bytes(range(256)) * 4)[:cfg.max_frame_length - 7]
        return TcFrame(0x55, 0, 0, data, bypass_flag=True).encode(cfg)

    tm = TmChannelConfig(frame_length=TM_FRAME_LENGTH, has_fecf=True)
    m = max(1, n // 4)
    _run("TC", tc, tc_frame, "tc", m)
    _run("TM", tm, _tm_frame, "tm", m)


if __name__ == "__main__":
    main()
