"""Space Packet layer benchmarks: prints figures, asserts nothing.

Run: ``python bench/bench_spp.py``. Each figure is the best of several repeats (the machine is
shared), so it estimates what the code costs, not what a busy machine delivers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from fractions import Fraction

from linkstack.spp.packet import HEADER, PRIMARY_HEADER, SpacePacket
from linkstack.spp.segmentation import Reassembler, Segmenter
from linkstack.spp.stream import PacketStreamParser
from linkstack.spp.timecode import CdsFormat, CdsTime, CucFormat, Submillisecond


def best(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best time per call, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def main() -> None:
    rnd = random.Random(7)
    print("per packet (µs, best of 5):")
    for size in (64, 1024):
        p = SpacePacket(0x42, 5, rnd.randbytes(size))
        raw = p.encode()
        print(f"  encode {size:5d} B data      {best(p.encode, 20000) * 1e6:7.2f}")
        print(f"  decode {size:5d} B data      {best(lambda r=raw: SpacePacket.decode(r), 20000) * 1e6:7.2f}")  # noqa: E501
    raw = SpacePacket(0x42, 5, b"x").encode()
    print(f"  header fast path unpack     {best(lambda: HEADER.unpack(raw), 50000) * 1e6:7.2f}")
    print(f"  header construct parse      {best(lambda: PRIMARY_HEADER.parse(raw), 2000) * 1e6:7.2f}")  # noqa: E501

    packets = [SpacePacket(0x42, i % 16384, rnd.randbytes(1024)).encode() for i in range(5000)]
    stream = b"".join(packets)

    def parse_stream() -> None:
        parser = PacketStreamParser(apids=[0x42])
        for i in range(0, len(stream), 4096):
            parser.feed(stream[i:i + 4096])

    t = best(parse_stream, 1, 3)
    print(f"stream parser, 1 KiB packets in 4 KiB chunks: {len(packets) / t:,.0f} packets/s, "
          f"{len(stream) / t / 1e6:.1f} MB/s")
    garbage = rnd.randbytes(1_000_000)

    def scan_garbage() -> None:
        parser = PacketStreamParser(apids=[0x42], max_packet_length=2048)
        for i in range(0, len(garbage), 4096):
            parser.feed(garbage[i:i + 4096])

    t = best(scan_garbage, 1, 3)
    print(f"stream parser resync over random garbage (APID list): "
          f"{len(garbage) / t / 1e6:.1f} MB/s")

    payload = rnd.randbytes(1 << 20)

    def round_trip() -> None:
        seg = Segmenter(0x42, max_data_length=1024)
        r = Reassembler()
        for q in seg.segment(payload):
            r.feed(q)

    t = best(round_trip, 1, 3)
    print(f"segment + reassemble 1 MiB in 1 KiB packets: {len(payload) / t / 1e6:.1f} MB/s "
          f"({1024 / t:,.0f} packets/s)")

    print("time codes (µs, best of 5):")
    cuc = CucFormat(4, 2)
    cuc_raw = cuc.encode(Fraction(123456789, 65536))
    cds = CdsFormat(2, Submillisecond.MICROSECONDS)
    cds_raw = cds.encode(CdsTime(21000, 43_200_000, 5_000_000))
    print(f"  CUC 4+2 encode {best(lambda: cuc.encode(Fraction(123456789, 65536)), 20000) * 1e6:6.2f}"  # noqa: E501
          f"   decode {best(lambda: cuc.decode(cuc_raw), 20000) * 1e6:6.2f}")
    print(f"  CDS 16+32+16 encode {best(lambda: cds.encode(CdsTime(21000, 43_200_000, 5_000_000)), 20000) * 1e6:6.2f}"  # noqa: E501
          f"   decode {best(lambda: cds.decode(cds_raw), 20000) * 1e6:6.2f}")


if __name__ == "__main__":
    main()
