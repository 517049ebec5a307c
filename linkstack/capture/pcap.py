"""Capture what the stack sends: a classic libpcap writer (and reader) for linkstack units.

Every Space Packet, transfer frame and coded hop unit (CLTU, CADU) the stack sends can be
written, with its timestamp (simulated or real), to a classic ``.pcap`` file that Wireshark,
tshark, tcpdump and scapy open as they are:

* File format: the classic libpcap format (magic ``0xa1b2c3d4`` for microsecond or
  ``0xa1b23c4d`` for nanosecond timestamps, version 2.4, little-endian here), one record per
  unit.
* Link type ``LINKTYPE_RAW`` (101): each record starts with an IPv4 header. Every tool maps it
  to IP without configuration (scapy: ``IPv46`` → ``IP``; Wireshark: "Raw IP").
* Each unit is the payload of one IPv4/UDP datagram whose *port says the layer*
  (:data:`PORTS`, source port = destination port) and whose *addresses say the nodes*
  (:meth:`PcapWriter.address`: ``10.0.0.1``, ``10.0.0.2``, ... in order of first use, so a
  ground station and two satellites become three hosts in Wireshark's Conversations view).
  :mod:`linkstack.capture.scapy_layers` binds its dissectors to these ports; Wireshark's built-in
  CCSDS (Space Packet) dissector is reached with ``-d udp.port==52001,ccsds`` (see the README),
  its CFDP dissector with ``-d udp.port==52008,cfdp`` (the PDUs of ``linkstack upload`` /
  ``download``, each also written inside its Space Packet on 52001).

The IPv4 and UDP checksums are computed (RFC 791, RFC 768), so no tool flags the records as
corrupt. A unit longer than :data:`MAX_UNIT_OCTETS` (65507, the largest UDP payload of an IPv4
datagram) cannot be represented: :meth:`PcapWriter.write` skips it, counts it in
``oversize`` and logs a warning instead of stopping the run that calls it. Only a Space
Packet over 65507 octets (the Packet Data Length allows 65542) or a USLP frame over 65507
octets (allowed up to 65536) can meet this limit.

Timestamps are integer nanoseconds (the simulators' clock, :mod:`linkstack.sims.engine`)
plus the writer's ``epoch_ns``: ``0`` puts simulated time 0 at 1970-01-01T00:00:00Z; a
real-time driver passes ``epoch_ns = time.time_ns() - loop_time_ns`` so records carry wall
clock time.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from linkstack.errors import ConfigError, DecodeError, TruncatedError

LAYER = "pcap"

MAGIC_MICROSECONDS = 0xA1B2C3D4
MAGIC_NANOSECONDS = 0xA1B23C4D
VERSION_MAJOR = 2
VERSION_MINOR = 4
LINKTYPE_RAW = 101
"""``LINKTYPE_RAW``: the packet begins with an IPv4 or IPv6 header (tcpdump.org link types)."""
DEFAULT_SNAPLEN = 65535

PORTS: dict[str, int] = {
    "spp": 52001,   # Space Packet (CCSDS 133.0-B-2)
    "tc": 52002,    # TC Transfer Frame (CCSDS 232.0-B-4)
    "tm": 52003,    # TM Transfer Frame (CCSDS 132.0-B-3)
    "aos": 52004,   # AOS Transfer Frame (CCSDS 732.0-B-4)
    "uslp": 52005,  # USLP Transfer Frame (CCSDS 732.1-B-2)
    "cltu": 52006,  # CLTU, BCH-coded TC (CCSDS 231.0-B-4)
    "cadu": 52007,  # CADU: ASM + (randomized, RS-coded) frame (CCSDS 131.0-B-4)
    "cfdp": 52008,  # CFDP PDU (CCSDS 727.0-B-5), the data field of an APID 0x102 packet
}
"""UDP port of each layer: dynamic-range ports (IANA 49152-65535), none of them a port a
Wireshark 4.0 dissector claims by default (``tshark -G decodes``)."""
LAYERS: dict[int, str] = {port: layer for layer, port in PORTS.items()}

IPV4_HEADER_SIZE = 20
UDP_HEADER_SIZE = 8
MAX_UNIT_OCTETS = 0xFFFF - IPV4_HEADER_SIZE - UDP_HEADER_SIZE
"""65507: the largest UDP payload an IPv4 datagram can hold (RFC 791 Total Length is 16 bits)."""
_IP_PROTO_UDP = 17
_TTL = 64
_DONT_FRAGMENT = 0x4000
_BASE_ADDRESS = 0x0A000001  # 10.0.0.1 (RFC 1918 private range)

_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")

_log = logging.getLogger(__name__)


def internet_checksum(data: bytes) -> int:
    """The 16-bit one's complement of the one's complement sum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_udp(payload: bytes, src: bytes, dst: bytes, sport: int, dport: int,
             identification: int = 0) -> bytes:
    """``payload`` wrapped in a UDP datagram (RFC 768) in an IPv4 packet (RFC 791), with
    both checksums computed. ``src``/``dst`` are 4-octet addresses."""
    udp_length = UDP_HEADER_SIZE + len(payload)
    total = IPV4_HEADER_SIZE + udp_length
    if total > 0xFFFF:
        raise ConfigError(f"{len(payload)} octets do not fit one IPv4/UDP datagram "
                          f"(at most {MAX_UNIT_OCTETS})", key="unit")
    pseudo = src + dst + struct.pack("!BBH", 0, _IP_PROTO_UDP, udp_length)
    udp = _UDP.pack(sport, dport, udp_length, 0) + payload
    checksum = internet_checksum(pseudo + udp) or 0xFFFF  # 0 means "no checksum" (RFC 768)
    header = _IPV4.pack(0x45, 0, total, identification & 0xFFFF, _DONT_FRAGMENT, _TTL,
                        _IP_PROTO_UDP, 0, src, dst)
    header = header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]
    return header + udp[:6] + checksum.to_bytes(2, "big") + udp[8:]


def _dotted(address: bytes) -> str:
    return ".".join(str(b) for b in address)


def node_addresses(nodes: Iterable[str]) -> dict[str, str]:
    """``10.0.0.1``, ``10.0.0.2``... for ``nodes`` in order — pass a scenario's node names
    (``scenario.nodes``) so that every capture of one scenario (each ``serve`` process's, the
    simulator's) gives a node the same address and the files can be merged (``mergecap``)."""
    return {name: _dotted((_BASE_ADDRESS + i).to_bytes(4, "big"))
            for i, name in enumerate(dict.fromkeys(nodes))}


class PcapWriter:
    """Write linkstack units to a classic pcap file (see the module docstring).

    Args:
        target: a path, or a binary file object opened for writing (not closed by
            :meth:`close` unless the writer opened it).
        nanosecond: write nanosecond timestamps (magic ``0xa1b23c4d``); default microseconds.
        epoch_ns: added to every ``time_ns`` (wall-clock nanoseconds of time 0).
        snaplen: the snapshot length written in the global header (records are never cut).
        addresses: fixed node name → IPv4 address (dotted) assignments; other names get the
            next free address from 10.0.0.1 upwards on first use.
        autoflush: flush the file after every record (for a live capture being tailed).

    Use as a context manager, or call :meth:`close`.

    Example (what ``linkstack run --pcap`` / ``serve --pcap`` do for every unit sent)::

        with PcapWriter("run.pcap", nanosecond=True) as pcap:
            pcap.write("tc", frame_octets, time_ns=now_ns, src="ground", dst="relay")
    """

    def __init__(self, target: str | os.PathLike[str] | BinaryIO, *, nanosecond: bool = False,
                 epoch_ns: int = 0, snaplen: int = DEFAULT_SNAPLEN,
                 addresses: dict[str, str] | None = None, autoflush: bool = False) -> None:
        if not 1 <= snaplen <= 0x7FFFFFFF:
            raise ConfigError("must be 1..2**31-1", key="snaplen")
        self.nanosecond = nanosecond
        self.epoch_ns = int(epoch_ns)
        self.autoflush = autoflush
        self.records = 0
        self.oversize = 0
        self._ip_id = 0
        self._addresses: dict[str, bytes] = {}
        self._next_address = _BASE_ADDRESS
        for name, dotted in (addresses or {}).items():
            try:
                octets = bytes(int(x) for x in dotted.split("."))
            except ValueError:
                octets = b""
            if len(octets) != 4:
                raise ConfigError(f"{dotted!r} is not a dotted IPv4 address",
                                  key=f"addresses.{name}")
            self._addresses[name] = octets
        if isinstance(target, str | os.PathLike):
            self._file: BinaryIO = open(target, "wb")  # noqa: SIM115 (closed in close())
            self._owns_file = True
        else:
            self._file = target
            self._owns_file = False
        magic = MAGIC_NANOSECONDS if nanosecond else MAGIC_MICROSECONDS
        self._file.write(_GLOBAL_HEADER.pack(magic, VERSION_MAJOR, VERSION_MINOR, 0, 0,
                                             snaplen, LINKTYPE_RAW))
        if autoflush:
            self._file.flush()

    # -- addresses -----------------------------------------------------------------------------
    def address(self, node: str) -> str:
        """The dotted IPv4 address that stands for ``node`` in this capture."""
        return _dotted(self._address(node))

    def _address(self, node: str) -> bytes:
        octets = self._addresses.get(node)
        if octets is None:
            taken = set(self._addresses.values())
            while (octets := self._next_address.to_bytes(4, "big")) in taken:
                self._next_address += 1
            self._next_address += 1
            self._addresses[node] = octets
        return octets

    @property
    def addresses(self) -> dict[str, str]:
        """Every node name used so far → its dotted address."""
        return {name: _dotted(a) for name, a in self._addresses.items()}

    # -- records -------------------------------------------------------------------------------
    def write(self, layer: str, unit: bytes | bytearray | memoryview, *, time_ns: int,
              src: str, dst: str) -> bool:
        """Append one record: ``unit`` (one packet / frame / CLTU / CADU of ``layer``, a key of
        :data:`PORTS`) sent at ``time_ns`` from node ``src`` to node ``dst``.

        Returns False (and counts ``oversize``) for a unit longer than
        :data:`MAX_UNIT_OCTETS`, which no IPv4/UDP datagram can carry.
        """
        port = PORTS.get(layer)
        if port is None:
            raise ConfigError(f"unknown layer; choose from {', '.join(PORTS)}", key="layer")
        payload = bytes(unit)
        if len(payload) > MAX_UNIT_OCTETS:
            self.oversize += 1
            _log.warning("pcap: %s unit of %d octets skipped (an IPv4/UDP datagram holds at "
                         "most %d)", layer, len(payload), MAX_UNIT_OCTETS)
            return False
        datagram = ipv4_udp(payload, self._address(src), self._address(dst), port, port,
                            self._ip_id)
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        t = self.epoch_ns + int(time_ns)
        if t < 0:
            raise ConfigError(f"{t} ns is before 1970 (epoch_ns + time_ns)", key="time_ns")
        seconds, frac_ns = divmod(t, 1_000_000_000)
        frac = frac_ns if self.nanosecond else frac_ns // 1000
        if seconds > 0xFFFFFFFF:
            raise ConfigError("after 2106: classic pcap seconds are 32 bits", key="time_ns")
        self._file.write(_RECORD_HEADER.pack(seconds, frac, len(datagram), len(datagram)))
        self._file.write(datagram)
        self.records += 1
        if self.autoflush:
            self._file.flush()
        return True

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Flush, and close the file if the writer opened it (idempotent)."""
        if self._file.closed:
            return
        self._file.flush()
        if self._owns_file:
            self._file.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- what a node sends ------------------------------------------------------------------------


class SendCapture:
    """Writes what one node sends on one hop: each coded unit, the transfer frame inside it,
    and the Space Packets handed to the hop.

    The frame is recovered from the unit by a private decoder of the same coding chain (the
    hop endpoints hand out coded units only), so the capture shows exactly the octets that
    went out. ``chain`` is a :class:`linkstack.codecs.chain.CodingChain`; ``unit_layer`` and
    ``frame_layer`` are :data:`PORTS` keys. :func:`capture_for` picks all three for a hop
    endpoint. Times are the driver's clock in seconds (``time_ns = round(now * 1e9)``, plus
    the writer's ``epoch_ns``).
    """

    def __init__(self, writer: PcapWriter, *, node: str, peer: str, chain: Any,
                 unit_layer: str, frame_layer: str) -> None:
        from linkstack.codecs.chain import FrameDecoded

        self._frame_decoded = FrameDecoded
        self.writer = writer
        self.node = node
        self.peer = peer
        self.decoder = chain.decoder()
        self.unit_layer = unit_layer
        self.frame_layer = frame_layer

    def unit(self, data: bytes, now: float) -> None:
        """One coded unit sent at ``now`` (and the frame in it)."""
        t = round(now * 1e9)
        self.writer.write(self.unit_layer, data, time_ns=t, src=self.node, dst=self.peer)
        for ev in self.decoder.feed(data):
            if isinstance(ev, self._frame_decoded):
                self.writer.write(self.frame_layer, ev.frame, time_ns=t, src=self.node,
                                  dst=self.peer)

    def packets(self, packets: list[bytes], now: float) -> None:
        """Space Packets handed to the hop at ``now``."""
        t = round(now * 1e9)
        for p in packets:
            self.writer.write("spp", p, time_ns=t, src=self.node, dst=self.peer)


def capture_for(endpoint: Any, writer: PcapWriter, *, node: str, peer: str) -> SendCapture:
    """The :class:`SendCapture` of a hop endpoint (:mod:`linkstack.hops`): CLTUs with TC (or
    USLP) frames for :class:`~linkstack.hops.rf.RfGround`, CADUs with TM frames for
    :class:`~linkstack.hops.rf.RfSpace`, CADUs with USLP frames for
    :class:`~linkstack.hops.isl.IslEndpoint`."""
    from linkstack.hops.isl import IslEndpoint
    from linkstack.hops.rf import RfGround, RfSpace

    if isinstance(endpoint, RfGround):
        chain, unit, frame = endpoint.uplink, "cltu", endpoint.frames.layer
    elif isinstance(endpoint, RfSpace):
        chain, unit, frame = endpoint.downlink, "cadu", "tm"
    elif isinstance(endpoint, IslEndpoint):
        chain, unit, frame = endpoint.chain, "cadu", "uslp"
    else:
        raise ConfigError(f"no capture for {type(endpoint).__name__}", key="endpoint")
    return SendCapture(writer, node=node, peer=peer, chain=chain, unit_layer=unit,
                       frame_layer=frame)


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PcapRecord:
    """One record of a linkstack capture: the unit, its layer (from the UDP port, None for a
    port that is not in :data:`PORTS`), the node addresses and the timestamp."""

    time_ns: int
    layer: str | None
    src: str
    dst: str
    unit: bytes


def read_pcap(source: str | os.PathLike[str] | bytes) -> Iterator[PcapRecord]:
    """Read back a capture written by :class:`PcapWriter` (classic pcap, ``LINKTYPE_RAW``,
    IPv4/UDP records; either byte order, µs or ns). Raises :class:`DecodeError` (layer
    ``"pcap"``) on anything else, naming the offset; never another exception type."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if len(data) < _GLOBAL_HEADER.size:
        raise TruncatedError("need the 24-octet global header", layer=LAYER, field="header",
                             offset=0)
    magic_le = int.from_bytes(data[:4], "little")
    magic_be = int.from_bytes(data[:4], "big")
    if magic_le in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS):
        order, magic = "<", magic_le
    elif magic_be in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS):
        order, magic = ">", magic_be
    else:
        raise DecodeError(f"0x{magic_le:08x} is not a classic pcap magic number", layer=LAYER,
                          field="magic_number", offset=0)
    scale = 1 if magic == MAGIC_NANOSECONDS else 1000
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    if linktype != LINKTYPE_RAW:
        raise DecodeError(f"link type {linktype}, expected {LINKTYPE_RAW} (raw IP)",
                          layer=LAYER, field="linktype", offset=20)
    record = struct.Struct(order + "IIII")
    pos = _GLOBAL_HEADER.size
    while pos < len(data):
        if len(data) - pos < record.size:
            raise TruncatedError("record header cut short", layer=LAYER, field="record",
                                 offset=pos)
        seconds, frac, incl, _orig = record.unpack_from(data, pos)
        body = data[pos + record.size:pos + record.size + incl]
        if len(body) != incl:
            raise TruncatedError(f"record says {incl} octets, {len(body)} left", layer=LAYER,
                                 field="incl_len", offset=pos + 8)
        yield _parse_datagram(body, seconds * 1_000_000_000 + frac * scale, pos + record.size)
        pos += record.size + incl


def _parse_datagram(body: bytes, time_ns: int, offset: int) -> PcapRecord:
    if len(body) < IPV4_HEADER_SIZE + UDP_HEADER_SIZE:
        raise TruncatedError("shorter than IPv4 + UDP headers", layer=LAYER, field="ipv4",
                             offset=offset)
    version_ihl, _, total, _, _, _, proto, _, src, dst = _IPV4.unpack_from(body)
    ihl = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or ihl < IPV4_HEADER_SIZE or proto != _IP_PROTO_UDP:
        raise DecodeError("not an IPv4/UDP datagram", layer=LAYER, field="ipv4", offset=offset)
    if total > len(body) or len(body) < ihl + UDP_HEADER_SIZE:
        raise TruncatedError(f"IPv4 Total Length {total}, record has {len(body)}", layer=LAYER,
                             field="total_length", offset=offset + 2)
    _sport, dport, udp_length, _ = _UDP.unpack_from(body, ihl)
    end = ihl + udp_length
    if udp_length < UDP_HEADER_SIZE or end > total:
        raise DecodeError(f"UDP Length {udp_length} does not fit", layer=LAYER,
                          field="udp_length", offset=offset + ihl + 4)
    return PcapRecord(time_ns, LAYERS.get(dport), _dotted(src), _dotted(dst),
                      bytes(body[ihl + UDP_HEADER_SIZE:end]))


def capture_bytes(records: list[tuple[str, bytes, int, str, str]], *,
                  nanosecond: bool = False) -> bytes:
    """A whole capture in memory: ``records`` of ``(layer, unit, time_ns, src, dst)``."""
    buf = io.BytesIO()
    writer = PcapWriter(buf, nanosecond=nanosecond)
    for layer, unit, time_ns, src, dst in records:
        writer.write(layer, unit, time_ns=time_ns, src=src, dst=dst)
    return buf.getvalue()
