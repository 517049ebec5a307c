"""Frame multiplexing throughput: 200-octet Space Packets in 1115-octet TM frames with FECF.

Prints, one figure a line (MB/s of Space Packet octets, one core):

    mux: <v> MB/s                  linkstack: encode packets, fill zones, build frames + FECF
    demux: <v> MB/s                linkstack: check FECF, decode frames, extract packets
    mux spacepackets: <v> MB/s     spacepackets 0.32 packing the same headers and frames
    demux spacepackets: <v> MB/s   spacepackets unpacking the same frames and packet headers

spacepackets has no packet-zone multiplexer, so its lines time the equivalent header and
frame pack/unpack work on the same data (the packets are laid into the frames by linkstack
beforehand); they are the baseline, not a like-for-like competitor. Run:
``python bench/frames.py [--packets N]``.
"""

from __future__ import annotations

import argparse
import time

from linkstack.frames.tm import TmChannelConfig
from linkstack.mux.packet_zone import PacketExtracted
from linkstack.mux.tm import TmDemultiplexer, TmMultiplexer
from linkstack.spp.packet import SpacePacket

PACKET = 200
FRAME = 1115


def _best(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=20000)
    args = ap.parse_args()
    n = args.packets
    config = TmChannelConfig(frame_length=FRAME, has_fecf=True)
    payloads = [bytes([i % 251]) * (PACKET - 6) for i in range(n)]
    total = n * PACKET
    frames: list[bytes] = []

    def mux() -> None:
        frames.clear()
        m = TmMultiplexer(0x55, config, (0, 1))
        for i, p in enumerate(payloads):
            m.add_packet(i & 1, SpacePacket(0x100 + (i & 1), (i >> 1) & 0x3FFF, p).encode())
            f = m.next_frame()
            if f is not None:
                frames.append(f.data)
        while m.pending_octets():
            f = m.next_frame(flush=True)
            assert f is not None
            frames.append(f.data)

    got = 0

    def demux() -> None:
        nonlocal got
        d = TmDemultiplexer(0x55, config)
        got = 0
        for fr in frames:
            for e in d.receive_frame(fr):
                if type(e) is PacketExtracted:
                    got += 1

    t_mux = _best(mux)
    t_demux = _best(demux)
    assert got == n, (got, n)

    import fastcrc  # what spacepackets itself uses for the FECF
    from spacepackets.ccsds import tm_frame as sp_tm
    from spacepackets.ccsds.spacepacket import PacketType as SpPacketType
    from spacepackets.ccsds.spacepacket import SpacePacket as SpSpacePacket
    from spacepackets.ccsds.spacepacket import SpacePacketHeader

    zones = [fr[6:-2] for fr in frames]
    packets = [SpacePacket(0x100, i & 0x3FFF, p).encode() for i, p in enumerate(payloads)]

    def sp_mux() -> None:
        for i, p in enumerate(payloads):
            SpSpacePacket(
                SpacePacketHeader(SpPacketType.TM, 0x100 + (i & 1), (i >> 1) & 0x3FFF,
                                  len(p) - 1), None, p,
            ).pack()
        for k, zone in enumerate(zones):
            status = sp_tm.TransferFrameDataFieldStatus(False, False, False, 3, 0)
            header = sp_tm.TmFramePrimaryHeader(
                sp_tm.MasterChannelId(0, 0x55), k & 1, False, k & 0xFF, (k >> 1) & 0xFF, status)
            body = header.pack() + zone
            sp_tm.TmTransferFrame(
                FRAME, header, None, zone, None, fastcrc.crc16.ibm_3740(body).to_bytes(2, "big")
            ).pack()

    def sp_demux() -> None:
        for fr in frames:
            sp_tm.TmTransferFrame.unpack(fr, FRAME, True)
        for pkt in packets:
            SpacePacketHeader.unpack(pkt)

    t_sp_mux = _best(sp_mux)
    t_sp_demux = _best(sp_demux)
    mb = total / 1e6
    print(f"packets: {n} x {PACKET} octets in {len(frames)} TM frames of {FRAME} octets")
    print(f"mux: {mb / t_mux:.1f} MB/s")
    print(f"demux: {mb / t_demux:.1f} MB/s")
    print(f"mux spacepackets: {mb / t_sp_mux:.1f} MB/s")
    print(f"demux spacepackets: {mb / t_sp_demux:.1f} MB/s")
    print(f"ratio mux linkstack/spacepackets: {t_sp_mux / t_mux:.2f}")
    print(f"ratio demux linkstack/spacepackets: {t_sp_demux / t_demux:.2f}")


if __name__ == "__main__":
    main()
