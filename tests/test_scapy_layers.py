"""linkstack.capture.scapy_layers: frames and packets encoded by linkstack, written with
linkstack.capture.pcap, read back with scapy's ``rdpcap``; every decoded field must equal the value
encoded. Also: the field lists are the construct declarations' fields, and scapy-built bytes
equal linkstack's encoders."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.packet import Packet, Raw
from scapy.utils import rdpcap

from linkstack.bitfields import BitHeader
from linkstack.capture.pcap import PcapWriter
from linkstack.capture.scapy_layers import (
    CLCW,
    FECF,
    FECF32,
    SPP,
    AOSFrame,
    TCFrame,
    TMFrame,
    USLPFrame,
    fields_from_struct,
    managed_parameters,
)
from linkstack.codecs.crc import compute_fecf
from linkstack.frames import aos, clcw, tc, tm, uslp
from linkstack.frames.aos import AosChannelConfig, AosFrame
from linkstack.frames.clcw import Clcw
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.frames.tm import TmChannelConfig, TmFrame
from linkstack.frames.uslp import UslpChannelConfig, UslpFrame
from linkstack.spp import packet as spp
from linkstack.spp.packet import PacketType, SequenceFlags, SpacePacket


def through_pcap(layer: str, unit: bytes) -> Packet:
    """Write ``unit`` with PcapWriter, read it back with scapy's rdpcap."""
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write(layer, unit, time_ns=0, src="ground", dst="sat1")
    buf.seek(0)
    (pkt,) = rdpcap(buf)
    return pkt


def named(header: BitHeader, spare: str = "reserved_spare") -> list[str]:
    out, n = [], 0
    for f in header.fields:
        if f.name is None:
            n += 1
            out.append(spare if n == 1 else f"{spare}_{n}")
        else:
            out.append(f.name)
    return out


# -- the field lists are derived from the declarations ------------------------------------------

def test_field_lists_follow_the_construct_declarations() -> None:
    names = lambda cls: [f.name for f in cls.fields_desc]  # noqa: E731
    assert names(SPP) == named(spp.HEADER)
    assert names(CLCW) == named(clcw.HEADER)
    assert names(TCFrame) == named(tc.HEADER) + named(tc.SEGMENT)
    assert names(TMFrame) == named(tm.HEADER) + named(tm.SECONDARY_ID) + [
        "secondary_header_data"]
    assert names(AOSFrame) == (named(aos.HEADER) + named(aos.FHEC) + ["insert_zone"]
                               + named(aos.M_PDU, "m_pdu_spare")
                               + named(aos.B_PDU, "b_pdu_spare"))
    assert names(USLPFrame) == (named(uslp.ID) + named(uslp.CONTROL) + ["vc_frame_count",
                                "insert_zone"] + named(uslp.TFDF_RULES)
                                + ["first_header_pointer"])
    widths = [f.size for f in SPP.fields_desc]
    assert widths == [f.width for f in spp.HEADER.fields]


def test_fields_from_struct_rejects_unknown_members() -> None:
    import construct as c
    import pytest

    with pytest.raises(TypeError):
        fields_from_struct("x", c.Struct("a" / c.CString("utf8")))


# -- Space Packet ------------------------------------------------------------------------------

_spp = st.builds(
    SpacePacket, apid=st.integers(0, 0x7FF), sequence_count=st.integers(0, 0x3FFF),
    data=st.binary(min_size=1, max_size=200), packet_type=st.sampled_from(PacketType),
    secondary_header_flag=st.booleans(), sequence_flags=st.sampled_from(SequenceFlags))


@settings(max_examples=80)
@given(_spp)
def test_space_packet_fields(p: SpacePacket) -> None:
    raw = p.encode()
    pkt = through_pcap("spp", raw)
    s = pkt[SPP]
    assert s.packet_version_number == 0
    assert (s.packet_type, s.secondary_header_flag, s.apid, s.sequence_flags,
            s.packet_sequence_count, s.packet_data_length) == (
        int(p.packet_type), int(p.secondary_header_flag), p.apid, int(p.sequence_flags),
        p.sequence_count, len(p.data) - 1)
    assert s[Raw].load == p.data
    built = SPP(packet_type=int(p.packet_type), secondary_header_flag=int(p.secondary_header_flag),
                apid=p.apid, sequence_flags=int(p.sequence_flags),
                packet_sequence_count=p.sequence_count) / Raw(p.data)
    assert bytes(built) == raw  # Packet Data Length filled in by post_build


def test_space_packet_trailing_octets_are_padding() -> None:
    raw = SpacePacket(5, 1, b"abc").encode()
    pkt = SPP(raw + b"\xEE\xEE")
    assert pkt[Raw].load == b"abc"
    assert pkt.lastlayer().load == b"\xEE\xEE"
    assert bytes(pkt) == raw + b"\xEE\xEE"


# -- CLCW --------------------------------------------------------------------------------------

_clcw = st.builds(
    Clcw, vcid=st.integers(0, 63), report_value=st.integers(0, 255), lockout=st.booleans(),
    wait=st.booleans(), retransmit=st.booleans(), farm_b_counter=st.integers(0, 3),
    no_rf_available=st.booleans(), no_bit_lock=st.booleans(), status_field=st.integers(0, 7),
    cop_in_effect=st.integers(0, 3))


def clcw_matches(layer: Packet, c: Clcw) -> bool:
    return (layer.vcid, layer.report_value, layer.lockout, layer.wait, layer.retransmit,
            layer.farm_b_counter, layer.no_rf_available, layer.no_bit_lock,
            layer.status_field, layer.cop_in_effect, layer.control_word_type) == (
        c.vcid, c.report_value, int(c.lockout), int(c.wait), int(c.retransmit),
        c.farm_b_counter, int(c.no_rf_available), int(c.no_bit_lock), c.status_field,
        c.cop_in_effect, 0)


@settings(max_examples=80)
@given(_clcw)
def test_clcw_fields_and_build(c: Clcw) -> None:
    layer = CLCW(c.encode())
    assert clcw_matches(layer, c)
    assert bytes(CLCW(vcid=c.vcid, report_value=c.report_value, lockout=int(c.lockout),
                      wait=int(c.wait), retransmit=int(c.retransmit),
                      farm_b_counter=c.farm_b_counter, no_rf_available=int(c.no_rf_available),
                      no_bit_lock=int(c.no_bit_lock), status_field=c.status_field,
                      cop_in_effect=c.cop_in_effect)) == c.encode()


# -- TC ----------------------------------------------------------------------------------------

@settings(max_examples=80)
@given(st.data())
def test_tc_frame_fields(data: st.DataObject) -> None:
    has_fecf = data.draw(st.booleans())
    segmented = data.draw(st.booleans())
    vcid = data.draw(st.integers(0, 63))
    frame_type = data.draw(st.sampled_from([(0, 0), (1, 0), (1, 1)]))
    config = TcChannelConfig(has_fecf=has_fecf,
                             segmented_vcids=frozenset({vcid}) if segmented else frozenset())
    bc = frame_type == (1, 1)
    map_id = data.draw(st.integers(0, 63)) if segmented and not bc else None
    flags = data.draw(st.sampled_from(SequenceFlags))
    frame = TcFrame(scid=data.draw(st.integers(0, 1023)), vcid=vcid,
                    frame_sequence_number=data.draw(st.integers(0, 255)),
                    data_field=data.draw(st.binary(min_size=1, max_size=120)),
                    bypass_flag=bool(frame_type[0]), control_command_flag=bc, map_id=map_id,
                    sequence_flags=flags)
    raw = frame.encode(config)
    with managed_parameters(config):
        pkt = through_pcap("tc", raw)
        f = pkt[TCFrame]
        assert (f.transfer_frame_version_number, f.bypass_flag, f.control_command_flag,
                f.scid, f.vcid, f.frame_length, f.frame_sequence_number) == (
            0, frame_type[0], frame_type[1], frame.scid, vcid, len(raw) - 1,
            frame.frame_sequence_number)
        if map_id is None:
            assert f.map_id is None
        else:
            assert (f.map_id, f.sequence_flags) == (map_id, int(flags))
        assert f[Raw].load == frame.data_field
        assert (FECF in f) == has_fecf
        if has_fecf:
            assert f[FECF].fecf == int.from_bytes(raw[-2:], "big")
        # build the same frame with scapy: Frame Length and FECF computed
        kwargs: dict[str, Any] = dict(bypass_flag=frame_type[0],
                                      control_command_flag=frame_type[1], scid=frame.scid,
                                      vcid=vcid, frame_sequence_number=frame.ns)
        if map_id is not None:
            kwargs.update(map_id=map_id, sequence_flags=int(flags))
        built = TCFrame(**kwargs) / Raw(frame.data_field)
        if has_fecf:
            built = built / FECF()
        assert bytes(built) == raw


# -- TM ----------------------------------------------------------------------------------------

@settings(max_examples=80)
@given(st.data())
def test_tm_frame_fields(data: st.DataObject) -> None:
    has_fecf = data.draw(st.booleans())
    config = TmChannelConfig(frame_length=data.draw(st.integers(80, 300)), has_fecf=has_fecf)
    c = data.draw(st.none() | _clcw)
    sec = data.draw(st.none() | st.binary(max_size=20))
    capacity = config.data_field_capacity(ocf=c is not None,
                                          secondary_header_length=0 if sec is None
                                          else 1 + len(sec))
    frame = TmFrame(
        scid=data.draw(st.integers(0, 1023)), vcid=data.draw(st.integers(0, 7)),
        mc_frame_count=data.draw(st.integers(0, 255)),
        vc_frame_count=data.draw(st.integers(0, 255)),
        first_header_pointer=data.draw(st.integers(0, capacity - 1) | st.sampled_from(
            [tm.FHP_NO_PACKET_START, tm.FHP_IDLE_DATA])),
        data_field=data.draw(st.binary(min_size=capacity, max_size=capacity)),
        ocf=None if c is None else c.encode(), secondary_header=sec,
        packet_order_flag=data.draw(st.booleans()))
    raw = frame.encode(config)
    with managed_parameters(config):
        pkt = through_pcap("tm", raw)
        f = pkt[TMFrame]
        assert (f.scid, f.vcid, f.ocf_flag, f.mc_frame_count, f.vc_frame_count,
                f.secondary_header_flag, f.synchronization_flag, f.packet_order_flag,
                f.segment_length_id, f.first_header_pointer) == (
            frame.scid, frame.vcid, int(c is not None), frame.mc_frame_count,
            frame.vc_frame_count, int(sec is not None), 0, int(frame.packet_order_flag), 3,
            frame.first_header_pointer)
        if sec is None:
            assert f.secondary_header_length is None
        else:
            assert f.secondary_header_length == len(sec)
            assert f.secondary_header_data == sec
        assert f[Raw].load == frame.data_field
        assert (CLCW in f) == (c is not None)
        if c is not None:
            assert clcw_matches(f[CLCW], c)
        assert (FECF in f) == has_fecf
        if has_fecf:
            assert f[FECF].fecf == int.from_bytes(compute_fecf(raw[:-2], 2), "big")
        # scapy-built frame equals linkstack's
        built: Packet = TMFrame(
            scid=frame.scid, vcid=frame.vcid, ocf_flag=int(c is not None),
            mc_frame_count=frame.mc_frame_count, vc_frame_count=frame.vc_frame_count,
            secondary_header_flag=int(sec is not None),
            packet_order_flag=int(frame.packet_order_flag), segment_length_id=3,
            first_header_pointer=frame.first_header_pointer,
            **({} if sec is None else {"secondary_header_length": len(sec),
                                       "secondary_header_data": sec})) / Raw(frame.data_field)
        if c is not None:
            built = built / CLCW(c.encode())
        if has_fecf:
            built = built / FECF()
        assert bytes(built) == raw


# -- AOS ---------------------------------------------------------------------------------------

@settings(max_examples=80)
@given(st.data())
def test_aos_frame_fields(data: st.DataObject) -> None:
    vcid = data.draw(st.integers(0, 63))
    unit = data.draw(st.sampled_from(["m_pdu", "b_pdu", "vca"])) if vcid != 63 else "idle"
    with_ocf = data.draw(st.booleans())
    config = AosChannelConfig(
        frame_length=data.draw(st.integers(60, 300)), has_fecf=data.draw(st.booleans()),
        has_fhec=data.draw(st.booleans()), insert_zone_length=data.draw(st.integers(0, 6)),
        ocf_vcids=frozenset({vcid}) if with_ocf else frozenset(),
        bpdu_vcids=frozenset({vcid}) if unit == "b_pdu" else frozenset(),
        vca_vcids=frozenset({vcid}) if unit == "vca" else frozenset())
    capacity = config.data_field_capacity(vcid)
    c = data.draw(_clcw) if with_ocf else None
    fhp = data.draw(st.integers(0, capacity - 1)) if unit == "m_pdu" else None
    bdp = data.draw(st.integers(0, 8 * capacity - 1) | st.just(aos.BDP_ALL_FILL)) \
        if unit == "b_pdu" else None
    frame = AosFrame(
        scid=data.draw(st.integers(0, 255)), vcid=vcid,
        vc_frame_count=data.draw(st.integers(0, 2**24 - 1)),
        data_field=data.draw(st.binary(min_size=capacity, max_size=capacity)),
        first_header_pointer=fhp, bitstream_data_pointer=bdp,
        insert_zone=data.draw(st.binary(min_size=config.insert_zone_length,
                                        max_size=config.insert_zone_length)),
        ocf=None if c is None else c.encode(), replay_flag=data.draw(st.booleans()),
        vc_frame_count_usage_flag=data.draw(st.booleans()),
        vc_frame_count_cycle=data.draw(st.integers(0, 15)))
    raw = frame.encode(config)
    with managed_parameters(config):
        f = through_pcap("aos", raw)[AOSFrame]
        assert (f.transfer_frame_version_number, f.scid, f.vcid, f.vc_frame_count,
                f.replay_flag, f.vc_frame_count_usage_flag, f.vc_frame_count_cycle) == (
            1, frame.scid, vcid, frame.vc_frame_count, int(frame.replay_flag),
            int(frame.vc_frame_count_usage_flag), frame.vc_frame_count_cycle)
        if config.has_fhec:
            assert f.frame_header_error_control == int.from_bytes(raw[6:8], "big")
        else:
            assert f.frame_header_error_control is None
        assert f.insert_zone == (frame.insert_zone if config.insert_zone_length else None)
        assert f.first_header_pointer == fhp
        assert f.bitstream_data_pointer == bdp
        assert f[Raw].load == frame.data_field
        assert (CLCW in f) == with_ocf
        if c is not None:
            assert clcw_matches(f[CLCW], c)
        assert (FECF in f) == config.has_fecf


# -- USLP --------------------------------------------------------------------------------------

@settings(max_examples=80)
@given(st.data())
def test_uslp_frame_fields(data: st.DataObject) -> None:
    fecf_size = data.draw(st.sampled_from([0, 2, 4]))
    iz = data.draw(st.integers(0, 4))
    kind = data.draw(st.sampled_from(["variable", "fixed", "truncated"]))
    c = data.draw(_clcw) if kind != "truncated" and data.draw(st.booleans()) else None
    vcl = data.draw(st.integers(0, 7)) if kind != "truncated" else 0
    if kind == "fixed":
        rules = data.draw(st.integers(0, 2))
        config = UslpChannelConfig(frame_length=data.draw(st.integers(40, 200)),
                                   fecf_size=fecf_size, insert_zone_length=iz)
        n = config.data_field_capacity(vc_frame_count_length=vcl, ocf=c is not None,
                                       tfdz_construction_rules=rules)
    elif kind == "variable":
        rules = data.draw(st.integers(3, 7))
        config = UslpChannelConfig(fecf_size=fecf_size, insert_zone_length=iz)
        n = data.draw(st.integers(1, 100))
    else:
        rules = data.draw(st.integers(3, 7))
        config = UslpChannelConfig(fecf_size=fecf_size, insert_zone_length=iz,
                                   truncated_frame_length=data.draw(st.integers(20, 60)))
        n = config.data_field_capacity(truncated=True, tfdz_construction_rules=rules)
    tfdz = data.draw(st.binary(min_size=n, max_size=n))
    fhp = None
    if rules <= 2:
        fhp = data.draw(st.integers(0, n - 1) | st.just(uslp.POINTER_NONE))
    frame = UslpFrame(
        scid=data.draw(st.integers(0, 0xFFFF)), vcid=data.draw(st.integers(0, 63)),
        map_id=data.draw(st.integers(0, 15)), data_field=tfdz, tfdz_construction_rules=rules,
        uslp_protocol_id=data.draw(st.integers(0, 31)), first_header_pointer=fhp,
        source_or_destination_id=data.draw(st.booleans()),
        bypass_sequence_control_flag=kind != "truncated" and data.draw(st.booleans()),
        protocol_control_command_flag=kind != "truncated" and data.draw(st.booleans()),
        vc_frame_count_length=vcl,
        vc_frame_count=data.draw(st.integers(0, (1 << (8 * vcl)) - 1)),
        insert_zone=data.draw(st.binary(min_size=iz, max_size=iz)),
        ocf=None if c is None else c.encode(), truncated=kind == "truncated")
    raw = frame.encode(config)
    with managed_parameters(config):
        f = through_pcap("uslp", raw)[USLPFrame]
        assert (f.transfer_frame_version_number, f.scid, f.source_or_destination_id, f.vcid,
                f.map_id, f.end_of_frame_primary_header) == (
            12, frame.scid, int(frame.source_or_destination_id), frame.vcid, frame.map_id,
            int(frame.truncated))
        if frame.truncated:
            assert f.frame_length is None and f.vc_frame_count is None
        else:
            assert (f.frame_length, f.bypass_sequence_control_flag,
                    f.protocol_control_command_flag, f.ocf_flag, f.vc_frame_count_length) == (
                len(raw) - 1, int(frame.bypass_sequence_control_flag),
                int(frame.protocol_control_command_flag), int(c is not None), vcl)
            assert f.vc_frame_count == (frame.vc_frame_count if vcl else None)
        assert f.insert_zone == (frame.insert_zone if iz else None)
        assert (f.tfdz_construction_rules, f.uslp_protocol_id) == (rules,
                                                                    frame.uslp_protocol_id)
        assert f.first_header_pointer == fhp
        assert f[Raw].load == tfdz
        assert (CLCW in f) == (c is not None)
        if c is not None:
            assert clcw_matches(f[CLCW], c)
        assert (FECF in f, FECF32 in f) == (fecf_size == 2, fecf_size == 4)
        if fecf_size:
            trailer = f[FECF] if fecf_size == 2 else f[FECF32]
            assert trailer.fecf == int.from_bytes(raw[-fecf_size:], "big")
        if not frame.truncated:
            fields = {k: v for k, v in f.fields.items() if k != "frame_length"}
            built: Packet = USLPFrame(**fields) / Raw(tfdz)
            if c is not None:
                built = built / CLCW(c.encode())
            if fecf_size:
                built = built / (FECF() if fecf_size == 2 else FECF32())
            assert bytes(built) == raw


# -- robustness --------------------------------------------------------------------------------

_LAYER_OF = {SPP: "spp", TCFrame: "tc", TMFrame: "tm", AOSFrame: "aos", USLPFrame: "uslp"}


@settings(max_examples=300)
@given(st.binary(max_size=80), st.sampled_from(sorted(_LAYER_OF.values())),
       st.sampled_from([{}, {"has_fhec": True, "insert_zone_length": 3,
                             "ocf_vcids": frozenset(range(64))}]))
def test_random_bytes_dissect_and_rebuild_exactly(data: bytes, layer: str,
                                                  aos_options: dict) -> None:
    """Whatever the bytes, rdpcap dissects them without an exception (scapy falls back to
    Raw for a unit too short for its header) and rebuilding gives the same octets."""
    with managed_parameters(AosChannelConfig(**aos_options),
                            UslpChannelConfig(fecf_size=4, insert_zone_length=2),
                            TcChannelConfig(segmented_vcids=frozenset(range(64)))):
        pkt = through_pcap(layer, data)
        pkt.summary()
        assert bytes(pkt.payload.payload) == data


def test_direct_dissection_of_every_layer_from_random_bytes() -> None:
    """Direct construction from bytes at least as long as the longest header (14 octets:
    a USLP header with a 7-octet VC Frame Count) rebuilds the same octets."""
    import random

    rng = random.Random(7)
    for cls in (*_LAYER_OF, CLCW):
        for _ in range(200):
            data = rng.randbytes(rng.randint(16, 100))
            assert bytes(cls(data)) == data
