"""SDLS throughput: apply + process of full-size frames, against a CRC-only baseline.

For each frame type it prints, one line per variant (frames/s, one core, best of 5 runs):

    crc-only          the FECF computed on send and checked on receive, nothing else: the
                      work a channel does per frame without SDLS (the baseline)
    aes-256-gcm       SdlsEngine.apply + SdlsEngine.process, authenticated encryption
                      (12-octet IV, 4-octet ARSN, 16-octet MAC, all-ones mask)
    aes-256-cmac      same SA shape, authentication only
    hmac-sha256       same SA shape, authentication only

and the ratio (time per frame of the variant / time per frame of the baseline), all measured
in the same run. The TC frames are 1024 octets, the largest a TC frame can be (10-bit Frame
Length field, 232.0-B-4 §4.1.2.7); the TM frames are the stack's default 1115 octets.
Run: ``python bench/sdls.py [--frames N]``. Nothing here asserts a time.
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
VARIANTS = {
    "aes-256-gcm": ("authenticated_encryption", "aes-gcm", 12),
    "aes-256-cmac": ("authentication", "aes-cmac", 0),
    "hmac-sha256": ("authentication", "hmac-sha256", 0),
}


def _best(fn: Callable[[], None], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _db(frame: str, service: str, algorithm: str, iv_length: int) -> SaDatabase:
    sa = SecurityAssociation(spi=1, frame=frame, scid=0x55, vcids={0}, service=service,
                             algorithm=algorithm, iv_length=iv_length, arsn_length=4,
                             arsn_window=1, mac_length=16, key_id=1,
                             state=SaState.OPERATIONAL)
    return SaDatabase(KeyRing([Key(1, KEY)]), [sa])


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
    print(f"{label}: {n} frames of {size} octets")
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
    ap.add_argument("--frames", type=int, default=5000)
    n = ap.parse_args().frames

    tc = TcChannelConfig(has_fecf=True)

    def tc_frame(cfg: Any) -> bytes:  # the largest frame cfg allows (header 5, FECF 2)
        data = (bytes(range(256)) * 4)[:cfg.max_frame_length - 7]
        return TcFrame(0x55, 0, 0, data, bypass_flag=True).encode(cfg)

    tm = TmChannelConfig(frame_length=1115, has_fecf=True)

    def tm_frame(cfg: Any) -> bytes:
        cap = cfg.data_field_capacity()
        return TmFrame(0x55, 0, 0, 0, FHP_NO_PACKET_START, (bytes(range(256)) * 5)[:cap]
                       ).encode(cfg)

    _run("TC", tc, tc_frame, "tc", n)
    _run("TM", tm, tm_frame, "tm", n)


if __name__ == "__main__":
    main()
