"""linkstack.capture.pcap: classic libpcap files of linkstack units, checked against the format's
published layout, against scapy's reader (an independent implementation) and, when tshark is
installed, against Wireshark's own CCSDS dissector."""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.utils import rdpcap

from linkstack.capture.pcap import (
    LINKTYPE_RAW,
    MAX_UNIT_OCTETS,
    PORTS,
    PcapRecord,
    PcapWriter,
    capture_bytes,
    internet_checksum,
    ipv4_udp,
    read_pcap,
)
from linkstack.errors import ConfigError, DecodeError
from linkstack.spp.packet import PacketType, SequenceFlags, SpacePacket


def test_global_header_is_the_published_layout() -> None:
    # pcap-savefile(5) / draft-ietf-opsawg-pcap §4: magic, major 2, minor 4, reserved 0, 0,
    # SnapLen, LinkType; written in the host's order (little-endian here).
    buf = io.BytesIO()
    PcapWriter(buf).close()
    assert buf.getvalue() == bytes.fromhex(
        "d4c3b2a1" "0200" "0400" "00000000" "00000000" "ffff0000" "65000000")
    buf = io.BytesIO()
    PcapWriter(buf, nanosecond=True, snaplen=262144).close()
    assert buf.getvalue()[:4] == bytes.fromhex("4d3cb2a1")
    assert struct.unpack("<I", buf.getvalue()[16:20])[0] == 262144
    assert LINKTYPE_RAW == 101


def test_rfc1071_checksum_example() -> None:
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2; the checksum is its complement.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    # odd length pads with a zero octet
    assert internet_checksum(b"\x01") == internet_checksum(b"\x01\x00")


def test_record_layout_and_timestamps() -> None:
    unit = SpacePacket(0x100, 7, b"prompt!", PacketType.TC).encode()
    for nanosecond, frac in ((False, 123456), (True, 123456789)):
        buf = io.BytesIO()
        with PcapWriter(buf, nanosecond=nanosecond, epoch_ns=10**18) as w:
            w.write("spp", unit, time_ns=5_123_456_789, src="ground", dst="sat1")
        data = buf.getvalue()
        seconds, got_frac, incl, orig = struct.unpack_from("<IIII", data, 24)
        assert seconds == 10**9 + 5
        assert got_frac == frac
        assert incl == orig == 20 + 8 + len(unit) == len(data) - 40
        ip = data[40:60]
        assert ip[0] == 0x45 and ip[9] == 17
        assert internet_checksum(ip) == 0  # a correct header sums to 0xFFFF
        assert ip[12:16] == bytes([10, 0, 0, 1]) and ip[16:20] == bytes([10, 0, 0, 2])
        sport, dport, length = struct.unpack_from("!HHH", data, 60)
        assert sport == dport == PORTS["spp"] == 52001
        assert length == 8 + len(unit)
        assert data[68:] == unit


def test_checksums_agree_with_scapy() -> None:
    payload = bytes(range(37))  # odd length exercises the padding octet
    dgram = ipv4_udp(payload, bytes([10, 0, 0, 3]), bytes([10, 0, 0, 9]), 52003, 52003, 77)
    pkt = IP(dgram)
    assert bytes(pkt[UDP].payload) == payload
    rebuilt = IP(bytes(pkt))
    del rebuilt.chksum
    del rebuilt[UDP].chksum
    fresh = IP(bytes(rebuilt))
    assert fresh.chksum == pkt.chksum
    assert fresh[UDP].chksum == pkt[UDP].chksum


_layers = st.sampled_from(sorted(PORTS))
_nodes = st.sampled_from(["ground", "relay", "sat1", "sat2"])
_record = st.tuples(_layers, st.binary(min_size=0, max_size=300),
                    st.integers(0, 2**32 * 10**9 - 1), _nodes, _nodes)


@settings(max_examples=60)
@given(st.lists(_record, max_size=8), st.booleans())
def test_round_trip_through_read_pcap_and_scapy(records: list, nanosecond: bool) -> None:
    data = capture_bytes(records, nanosecond=nanosecond)
    got = list(read_pcap(data))
    writer_addresses: dict[str, str] = {}
    for node in [n for r in records for n in (r[3], r[4])]:
        writer_addresses.setdefault(node, f"10.0.0.{len(writer_addresses) + 1}")
    want = [PcapRecord(t if nanosecond else t // 1000 * 1000, layer, writer_addresses[s],
                       writer_addresses[d], unit) for layer, unit, t, s, d in records]
    assert got == want
    # scapy reads the same file independently: timestamps, addresses, ports, payload
    packets = rdpcap(io.BytesIO(data))
    assert len(packets) == len(records)
    for pkt, rec in zip(packets, want, strict=True):
        assert int(pkt.time * 10**9) == rec.time_ns
        assert pkt[IP].src == rec.src and pkt[IP].dst == rec.dst
        assert pkt[UDP].dport == PORTS[rec.layer]
        assert bytes(pkt[UDP].payload) == rec.unit


def test_addresses_fixed_and_assigned() -> None:
    w = PcapWriter(io.BytesIO(), addresses={"ground": "192.0.2.1", "relay": "10.0.0.1"})
    assert w.address("ground") == "192.0.2.1"
    assert w.address("sat1") == "10.0.0.2"  # 10.0.0.1 is taken by "relay"
    assert w.address("sat1") == "10.0.0.2"
    assert w.addresses == {"ground": "192.0.2.1", "relay": "10.0.0.1", "sat1": "10.0.0.2"}
    with pytest.raises(ConfigError):
        PcapWriter(io.BytesIO(), addresses={"x": "10.0.0"})


def test_oversize_unit_is_skipped_and_counted() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf)
    assert w.write("uslp", bytes(MAX_UNIT_OCTETS), time_ns=0, src="a", dst="b")
    assert not w.write("uslp", bytes(MAX_UNIT_OCTETS + 1), time_ns=1, src="a", dst="b")
    assert (w.records, w.oversize) == (1, 1)
    w.close()
    (rec,) = read_pcap(buf.getvalue())
    assert len(rec.unit) == MAX_UNIT_OCTETS


def test_bad_arguments() -> None:
    w = PcapWriter(io.BytesIO())
    with pytest.raises(ConfigError):
        w.write("ethernet", b"x", time_ns=0, src="a", dst="b")
    with pytest.raises(ConfigError):
        w.write("spp", b"x", time_ns=-1, src="a", dst="b")
    with pytest.raises(ConfigError):
        PcapWriter(io.BytesIO(), snaplen=0)


def test_file_path_and_big_endian_reader(tmp_path) -> None:
    path = tmp_path / "x.pcap"
    with PcapWriter(path, autoflush=True) as w:
        w.write("tc", b"\x00\x01\x02", time_ns=1500, src="ground", dst="relay")
        assert path.stat().st_size == 24 + 16 + 31  # autoflush: on disk already
    assert [r.unit for r in read_pcap(path)] == [b"\x00\x01\x02"]
    # the same capture written big-endian (as a big-endian host would) reads the same
    le = path.read_bytes()
    g = struct.unpack("<IHHiIII", le[:24])
    r = struct.unpack("<IIII", le[24:40])
    be = struct.pack(">IHHiIII", *g) + struct.pack(">IIII", *r) + le[40:]
    assert list(read_pcap(be)) == list(read_pcap(le))


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_reader_fuzz_raises_only_decode_errors(data: bytes) -> None:
    for prefix in (b"", capture_bytes([])):
        with contextlib.suppress(DecodeError):
            list(read_pcap(prefix + data))


def test_reader_rejects_other_link_types() -> None:
    data = bytearray(capture_bytes([("spp", b"\x00" * 7, 0, "a", "b")]))
    data[20] = 1  # LINKTYPE_ETHERNET
    with pytest.raises(DecodeError) as err:
        list(read_pcap(bytes(data)))
    assert err.value.field == "linktype" and err.value.offset == 20


TSHARK = shutil.which("tshark")


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (Debian package tshark)")
def test_wireshark_ccsds_dissector_decodes_space_packets(tmp_path) -> None:
    packets = [
        SpacePacket(0x100, 1, b"What is the capital of France?", PacketType.TC),
        SpacePacket(0x101, 16383, bytes(range(40)), PacketType.TM,
                    sequence_flags=SequenceFlags.FIRST),
        SpacePacket(0x7FF, 9, bytes(10)),  # idle packet, exactly 16 octets
    ]
    path = tmp_path / "spp.pcap"
    with PcapWriter(path, nanosecond=True) as w:
        for i, p in enumerate(packets):
            w.write("spp", p.encode(), time_ns=i * 1000, src="ground", dst="sat1")
    out = subprocess.run(
        [TSHARK, "-r", str(path), "-d", f"udp.port=={PORTS['spp']},ccsds",
         "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-T", "fields", "-E", "separator=,", "-e", "ccsds.apid", "-e", "ccsds.type",
         "-e", "ccsds.seqflag", "-e", "ccsds.seqnum", "-e", "ccsds.length",
         "-e", "ip.checksum.status", "-e", "udp.checksum.status", "-e", "_ws.malformed"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split("\n")
    rows = [line.split(",") for line in out if line]
    assert len(rows) == len(packets)
    for row, p in zip(rows, packets, strict=True):
        assert row[:5] == [str(p.apid), str(int(p.packet_type)), str(int(p.sequence_flags)),
                           str(p.sequence_count), str(len(p.data) - 1)]
        assert row[5:7] == ["1", "1"]  # Wireshark's "Good" checksum status
        assert row[7] == ""  # not malformed


def test_capture_of_a_uslp_uplink_names_its_frames_uslp() -> None:
    from linkstack.capture.pcap import capture_for
    from linkstack.frames.uslp import UslpFrame
    from linkstack.hops.rf import RfGround, RfHopConfig

    packet = SpacePacket(0x100, 3, b"a prompt, say", PacketType.TC).encode()
    hop = RfHopConfig(uplink_frame="uslp")
    buf = io.BytesIO()
    w = PcapWriter(buf, nanosecond=True)
    ground = RfGround(hop)
    ground.send_packet(packet, now=0.0)
    capture = capture_for(ground, w, node="ground", peer="sat1")
    for unit in ground.poll(0.5):
        capture.unit(unit.data, 0.5)
    w.close()
    records = list(read_pcap(buf.getvalue()))
    assert [r.layer for r in records] == ["cltu", "uslp"]
    frame = UslpFrame.decode(records[1].unit, hop.uplink_frames().config)
    assert frame.data_field == packet and frame.vc_frame_count_length == 1


def test_capture_for_each_hop_endpoint() -> None:
    """capture_for writes each unit a hop endpoint sends, the frame recovered from it, and the
    packets; the frames decode back (linkstack decoders) to the packet that was sent."""
    from linkstack.capture.pcap import capture_for
    from linkstack.codecs.chain import CodingChain
    from linkstack.frames.tc import TcFrame
    from linkstack.frames.tm import TmChannelConfig, TmFrame
    from linkstack.frames.uslp import UslpFrame
    from linkstack.hops.isl import IslEndpoint, IslHopConfig
    from linkstack.hops.rf import RfGround, RfHopConfig, RfSpace

    packet = SpacePacket(0x100, 3, b"a prompt, say", PacketType.TC).encode()
    hop = RfHopConfig()
    buf = io.BytesIO()
    w = PcapWriter(buf, nanosecond=True)
    for endpoint, node, peer in ((RfGround(hop), "ground", "sat1"), (RfSpace(hop), "sat1",
                                                                      "ground"),
                                 (IslEndpoint(IslHopConfig()), "relay", "sat1")):
        endpoint.send_packet(packet, now=0.0)
        capture = capture_for(endpoint, w, node=node, peer=peer)
        capture.packets([packet], 0.25)
        for unit in endpoint.poll(0.5):
            capture.unit(unit.data, 0.5)
    w.close()
    records = list(read_pcap(buf.getvalue()))
    assert [r.layer for r in records] == ["spp", "cltu", "tc", "spp", "cadu", "tm",
                                          "spp", "cadu", "uslp"]
    assert [r.time_ns for r in records[:2]] == [250_000_000, 500_000_000]
    tc = TcFrame.decode(records[2].unit, hop.uplink_frames().config)
    assert tc.data_field == packet
    tm_config = TmChannelConfig(frame_length=CodingChain.from_name(hop.downlink_code)
                                .frame_length or 0, has_ocf=True)
    tm = TmFrame.decode(records[5].unit, tm_config)
    assert tm.data_field[tm.first_header_pointer:][:len(packet)] == packet
    uslp = UslpFrame.decode(records[8].unit)
    assert packet in uslp.data_field
    with pytest.raises(ConfigError):
        capture_for(object(), w, node="a", peer="b")
