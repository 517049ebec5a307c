"""USLP Transfer Frame (732.1-B-2 §4.1): vector, spacepackets interop, properties, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.uslp import (
    PrimaryHeader,
    SourceOrDestField,
    TfdzConstructionRules,
    TransferFrame,
    TransferFrameDataField,
    TruncatedPrimaryHeader,
    UslpProtocolIdentifier,
)
from spacepackets.uslp.frame import FixedFrameProperties, FrameType, VarFrameProperties

from linkstack.errors import (
    ChecksumError,
    ConfigError,
    DecodeError,
    EncodeError,
    LinkstackError,
    TruncatedError,
)
from linkstack.frames.tm import split_packet_zone
from linkstack.frames.uslp import (
    CONTROL,
    HEADER_CONTROL_FIELDS,
    HEADER_ID_FIELDS,
    ID,
    MAX_FRAME_LENGTH,
    POINTER_NONE,
    PRIMARY_HEADER,
    TFDF_HEADER,
    TfdzConstructionRule,
    UslpChannelConfig,
    UslpFrame,
    UslpProtocolId,
    uslp_frame_length,
)
from linkstack.spp.packet import SpacePacket, idle_packet

TC_PACKET = bytes.fromhex("1042c005000301020304")  # specs/sources.md §1.15 (spacepackets encoding)


def test_facts_vector() -> None:
    # specs/sources.md §1.15: spacepackets builds SCID 0x1234, VCID 3, MAP 1, VCF count length 1
    # = 7, rule 111, UPID 0, TFDZ = the TC packet, CRC-16 FECF as:
    expected = bytes.fromhex("c123406200140107e0") + TC_PACKET + bytes.fromhex("b44f")
    frame = UslpFrame(0x1234, 3, 1, TC_PACKET, TfdzConstructionRule.NO_SEGMENTATION,
                      UslpProtocolId.SPACE_PACKETS, vc_frame_count_length=1, vc_frame_count=7)
    assert frame.encode(UslpChannelConfig()) == expected
    assert UslpFrame.decode(expected, UslpChannelConfig()) == frame
    assert SpacePacket.decode(frame.data_field).apid == 0x42


# --------------------------------------------------------------------------------------
# Interop with spacepackets 0.32 (uslp/), both directions
# --------------------------------------------------------------------------------------

SP_UPIDS = [int(u) for u in UslpProtocolIdentifier]


@st.composite
def sp_cases(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["fixed", "variable", "truncated"]))
    truncated = kind == "truncated"
    rule = draw(st.sampled_from([0, 1, 2])) if kind == "fixed" else draw(st.integers(3, 7))
    iz = draw(st.integers(0, 6))
    has_fecf = draw(st.booleans())
    ocf = None if truncated or not draw(st.booleans()) else draw(st.binary(min_size=4,
                                                                           max_size=4))
    vcfcl = 0 if truncated else draw(st.integers(0, 7))
    tfdz = draw(st.binary(min_size=1, max_size=120))
    fhp = None
    if rule <= 2:
        fhp = draw(st.just(POINTER_NONE) | st.integers(0, len(tfdz) - 1))
    header_len = 4 if truncated else 7 + vcfcl
    total = header_len + iz + (3 if fhp is not None else 1) + len(tfdz) + (4 if ocf else 0) + (
        2 if has_fecf else 0)
    fecf = 2 if has_fecf else 0
    if kind == "fixed":
        config = UslpChannelConfig(frame_length=total, fecf_size=fecf, insert_zone_length=iz)
    elif truncated:
        config = UslpChannelConfig(fecf_size=fecf, insert_zone_length=iz,
                                   truncated_frame_length=total)
    else:
        config = UslpChannelConfig(fecf_size=fecf, insert_zone_length=iz)
    return dict(
        kind=kind, config=config, scid=draw(st.integers(0, 0xFFFF)), sod=draw(st.booleans()),
        vcid=draw(st.integers(0, 63)), map_id=draw(st.integers(0, 15)), rule=rule,
        upid=draw(st.sampled_from(SP_UPIDS)), tfdz=tfdz, fhp=fhp,
        bypass=False if truncated else draw(st.booleans()),
        pcc=False if truncated else draw(st.booleans()), vcfcl=vcfcl,
        vcfc=draw(st.integers(0, (1 << (8 * vcfcl)) - 1)),
        iz=draw(st.binary(min_size=iz, max_size=iz)), ocf=ocf, truncated=truncated,
    )


def _sp(c: dict) -> TransferFrame:
    if c["truncated"]:
        header = TruncatedPrimaryHeader(c["scid"], SourceOrDestField(int(c["sod"])), c["vcid"],
                                        c["map_id"])
    else:
        header = PrimaryHeader(
            c["scid"], SourceOrDestField(int(c["sod"])), c["vcid"], c["map_id"], frame_len=0,
            bypass_seq_ctrl_flag=int(c["bypass"]), prot_ctrl_cmd_flag=int(c["pcc"]),
            op_ctrl_flag=c["ocf"] is not None, vcf_count_len=c["vcfcl"], vcf_count=c["vcfc"],
        )
    tfdf = TransferFrameDataField(TfdzConstructionRules(c["rule"]),
                                  UslpProtocolIdentifier(c["upid"]), c["tfdz"], c["fhp"])
    frame = TransferFrame(header, tfdf, insert_zone=c["iz"] or None, op_ctrl_field=c["ocf"],
                          has_fecf=c["config"].fecf_size == 2)
    frame.set_frame_len_in_header()
    return frame


def _ls(c: dict) -> UslpFrame:
    return UslpFrame(c["scid"], c["vcid"], c["map_id"], c["tfdz"], c["rule"], c["upid"], c["fhp"],
                     c["sod"], c["bypass"], c["pcc"], c["vcfcl"], c["vcfc"], c["iz"], c["ocf"],
                     c["truncated"])


def _frame_type(c: dict) -> FrameType:
    return FrameType.FIXED if c["kind"] == "fixed" else FrameType.VARIABLE


@settings(max_examples=150)
@given(sp_cases())
def test_encode_matches_spacepackets(c: dict) -> None:
    sp_raw = bytes(_sp(c).pack(truncated=c["truncated"], frame_type=_frame_type(c)))
    assert _ls(c).encode(c["config"]) == sp_raw


@settings(max_examples=150)
@given(sp_cases())
def test_decode_of_spacepackets_frame(c: dict) -> None:
    sp_raw = bytes(_sp(c).pack(truncated=c["truncated"], frame_type=_frame_type(c)))
    assert UslpFrame.decode(sp_raw, c["config"]) == _ls(c)


@settings(max_examples=150)
@given(sp_cases())
def test_spacepackets_decodes_linkstack_frame(c: dict) -> None:
    raw = _ls(c).encode(c["config"])
    config = c["config"]
    if c["kind"] == "fixed":
        props = FixedFrameProperties(len(raw), bool(config.insert_zone_length),
                                     config.fecf_size == 2, config.insert_zone_length)
    else:
        props = VarFrameProperties(bool(config.insert_zone_length), config.fecf_size == 2,
                                   config.truncated_frame_length or 0,
                                   config.insert_zone_length)
    sp = TransferFrame.unpack(raw, _frame_type(c), props)  # checks the CRC with fastcrc
    assert (sp.header.scid, int(sp.header.src_dest), sp.header.vcid, sp.header.map_id) == (
        c["scid"], int(c["sod"]), c["vcid"], c["map_id"])
    assert sp.tfdf.tfdz == c["tfdz"]
    assert (sp.tfdf.tfdz_contr_rules, sp.tfdf.uslp_ident, sp.tfdf.fhp_or_lvop) == (
        c["rule"], c["upid"], c["fhp"])
    if not c["truncated"]:
        assert (sp.header.vcf_count_len, sp.header.frame_len) == (c["vcfcl"], len(raw) - 1)
        if c["vcfcl"]:
            assert sp.header.vcf_count == c["vcfc"]
        assert sp.op_ctrl_field == c["ocf"]
    assert (sp.insert_zone or b"") == c["iz"]


# --------------------------------------------------------------------------------------
# Declarations vs fast path
# --------------------------------------------------------------------------------------


@given(scid=st.integers(0, 0xFFFF), sod=st.booleans(), vcid=st.integers(0, 63),
       map_id=st.integers(0, 15), eofph=st.booleans(), length=st.integers(0, 0xFFFF),
       bypass=st.booleans(), pcc=st.booleans(), ocf=st.booleans(), vcfcl=st.integers(0, 7),
       vcfc_seed=st.integers(0, 2**56 - 1))
def test_bitheaders_agree_with_construct(scid: int, sod: bool, vcid: int, map_id: int,
                                         eofph: bool, length: int, bypass: bool, pcc: bool,
                                         ocf: bool, vcfcl: int, vcfc_seed: int) -> None:
    id_values = (scid, int(sod), vcid, map_id, int(eofph))
    idb = ID.pack(*id_values)
    assert idb == HEADER_ID_FIELDS.build(dict(zip(ID.names, id_values, strict=True)))
    parsed = HEADER_ID_FIELDS.parse(idb)
    assert ID.unpack(idb) == tuple(int(parsed[n]) for n in ID.names)
    ctl_values = (length, int(bypass), int(pcc), int(ocf), vcfcl)
    ctl = CONTROL.pack(*ctl_values)
    assert ctl == HEADER_CONTROL_FIELDS.build(dict(zip(CONTROL.names, ctl_values, strict=True)))
    # The whole variable header, parsed by the one construct declaration, agrees with the
    # bytes the frame encoder emits.
    vcfc = vcfc_seed % (1 << (8 * vcfcl)) if vcfcl else 0
    raw = idb if eofph else idb + ctl + (vcfc.to_bytes(vcfcl, "big") if vcfcl else b"")
    whole = PRIMARY_HEADER.parse(raw)
    assert whole.id.scid == scid and whole.id.end_of_frame_primary_header == eofph
    if eofph:
        assert whole.control is None
    else:
        assert whole.control.frame_length == length
        assert whole.vc_frame_count == (vcfc if vcfcl else None)


@given(rule=st.integers(0, 7), upid=st.integers(0, 31), fhp=st.integers(0, 0xFFFF))
def test_tfdf_header_agrees_with_construct(rule: int, upid: int, fhp: int) -> None:
    ptr = fhp if rule <= 2 else None
    built = TFDF_HEADER.build(dict(rules=dict(tfdz_construction_rules=rule,
                                              uslp_protocol_id=upid),
                                   first_header_pointer=ptr))
    config = UslpChannelConfig(frame_length=20, fecf_size=0) if rule <= 2 else (
        UslpChannelConfig(fecf_size=0))
    tfdz = bytes(20 - 7 - 3) if rule <= 2 else b"\x00"
    if ptr is not None and ptr != POINTER_NONE:
        ptr = ptr % len(tfdz)
        built = built[:1] + ptr.to_bytes(2, "big")
    raw = UslpFrame(1, 1, 0, tfdz, rule, upid, ptr).encode(config)
    assert raw[7:7 + len(built)] == built


# --------------------------------------------------------------------------------------
# Round trips, FECF, fuzz
# --------------------------------------------------------------------------------------


@st.composite
def uslp_cases(draw: st.DrawFn,
               fecf_size: int | None = None) -> tuple[UslpFrame, UslpChannelConfig]:
    c = draw(sp_cases())
    config = c["config"]
    size = draw(st.sampled_from([0, 2, 4])) if fecf_size is None else fecf_size
    delta = size - config.fecf_size
    kwargs = dict(fecf_size=size, insert_zone_length=config.insert_zone_length)
    if config.frame_length is not None:
        kwargs["frame_length"] = config.frame_length + delta
    if config.truncated_frame_length is not None:
        kwargs["truncated_frame_length"] = config.truncated_frame_length + delta
    frame = _ls(c)
    if not c["truncated"] and c["rule"] <= 2 and draw(st.booleans()):
        # also cover any UPID value, not only the ones spacepackets enumerates
        frame = UslpFrame(**{**_fields(frame), "uslp_protocol_id": draw(st.integers(0, 31))})
    return frame, UslpChannelConfig(**kwargs)


def _fields(frame: UslpFrame) -> dict:
    return {name: getattr(frame, name) for name in UslpFrame.__dataclass_fields__}


@given(uslp_cases())
def test_round_trip(case: tuple[UslpFrame, UslpChannelConfig]) -> None:
    frame, config = case
    raw = frame.encode(config)
    assert uslp_frame_length(raw, config) == len(raw) == frame.encoded_length(config)
    assert UslpFrame.decode(raw, config) == frame
    # variable-length frames: trailing octets are not part of the frame
    if not config.fixed:
        assert UslpFrame.decode(raw + b"\xAA\xBB", config) == frame


@given(uslp_cases(fecf_size=4))
def test_crc32_fecf_matches_independent_crc(case: tuple[UslpFrame, UslpChannelConfig]) -> None:
    frame, config = case
    raw = frame.encode(config)
    assert raw[-4:] == _crc32_prox1_bitwise(raw[:-4]).to_bytes(4, "big")


def _crc32_prox1_bitwise(data: bytes) -> int:
    # Straight bitwise CRC: poly 0x00A00805, init 0, no reflection, no final XOR
    # (specs/sources.md §1.7, 732.1-B-2 §4.1.6.2 / 211.2-B); independent of crcmod.
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x00A00805) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def test_crc32_check_value() -> None:
    assert _crc32_prox1_bitwise(b"123456789") == 0x51693C0C


@given(uslp_cases(fecf_size=2) | uslp_cases(fecf_size=4), st.data())
def test_flipped_bit_caught_by_fecf(case: tuple[UslpFrame, UslpChannelConfig],
                                    data: st.DataObject) -> None:
    frame, config = case
    raw = bytearray(frame.encode(config))
    # On variable-length channels the Frame Length field (octets 4-5) and the End of Frame
    # Primary Header flag decide where the FECF is; those bits are excluded there.
    skip = set() if config.fixed else {31, *range(32, 48)}
    bit = data.draw(st.integers(0, 8 * len(raw) - 1).filter(lambda b: b not in skip))
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(ChecksumError) as info:
        UslpFrame.decode(bytes(raw), config)
    assert (info.value.layer, info.value.field) == ("uslp", "frame_error_control")


@pytest.mark.parametrize("bit", [31, *range(32, 48)])
def test_fixed_length_fecf_checked_before_header(bit: int) -> None:
    # On a fixed-length channel even the length field and the truncation flag are covered.
    config = UslpChannelConfig(frame_length=30, fecf_size=2)
    raw = bytearray(UslpFrame(1, 1, 0, bytes(config.data_field_capacity()), 0,
                              first_header_pointer=0).encode(config))
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(ChecksumError):
        UslpFrame.decode(bytes(raw), config)


@given(raw=st.binary(max_size=200), fecf=st.sampled_from([0, 2, 4]), iz=st.integers(0, 4),
       mode=st.sampled_from(["fixed", "variable", "truncated"]))
def test_random_bytes_raise_only_linkstack_errors(raw: bytes, fecf: int, iz: int,
                                                  mode: str) -> None:
    try:
        if mode == "fixed":
            config = UslpChannelConfig(frame_length=max(len(raw), 20), fecf_size=fecf,
                                       insert_zone_length=iz)
        elif mode == "truncated":
            config = UslpChannelConfig(fecf_size=fecf, insert_zone_length=iz,
                                       truncated_frame_length=max(len(raw) // 2, 12))
        else:
            config = UslpChannelConfig(fecf_size=fecf, insert_zone_length=iz)
    except ConfigError:
        return
    try:
        UslpFrame.decode(raw, config)
    except LinkstackError as exc:
        assert isinstance(exc, DecodeError)


# --------------------------------------------------------------------------------------
# Rules, pointers, managed parameters, limits
# --------------------------------------------------------------------------------------


def test_packets_spanning_frames_rule_000() -> None:
    config = UslpChannelConfig(frame_length=64, fecf_size=2)
    cap = config.data_field_capacity()
    assert cap == 64 - 7 - 3 - 2
    p1 = SpacePacket(5, 0, bytes(30)).encode()
    p2 = SpacePacket(6, 0, bytes(40)).encode()
    stream = p1 + p2 + idle_packet(2 * cap - len(p1) - len(p2))
    f1 = UslpFrame(9, 2, 0, stream[:cap], TfdzConstructionRule.PACKETS_SPANNING_FRAMES,
                   first_header_pointer=0)
    f2 = UslpFrame(9, 2, 0, stream[cap:], TfdzConstructionRule.PACKETS_SPANNING_FRAMES,
                   first_header_pointer=len(p1) + len(p2) - cap)
    zones = [UslpFrame.decode(f.encode(config), config) for f in (f1, f2)]
    z1 = split_packet_zone(zones[0].data_field, zones[0].first_header_pointer or 0,
                           no_packet_start=POINTER_NONE, idle_data=None, layer="uslp")
    assert z1.packets == (p1,) and z1.tail == p2[:cap - len(p1)]
    z2 = split_packet_zone(zones[1].data_field, zones[1].first_header_pointer or 0,
                           no_packet_start=POINTER_NONE, idle_data=None, layer="uslp")
    assert z1.tail + z2.head == p2
    assert SpacePacket.decode(z2.packets[0]).is_idle


def test_octet_stream_rule_011() -> None:
    config = UslpChannelConfig(fecf_size=4)
    frame = UslpFrame(1, 4, 2, b"any octets at all", TfdzConstructionRule.OCTET_STREAM,
                      UslpProtocolId.USER_OCTET_STREAM)
    raw = frame.encode(config)
    assert raw[7] == (0b011 << 5) | 4 and raw[8:8 + 17] == b"any octets at all"
    assert UslpFrame.decode(raw, config) == frame
    with pytest.raises(EncodeError) as info:
        UslpFrame(1, 4, 2, b"x", TfdzConstructionRule.OCTET_STREAM,
                  first_header_pointer=0).encode(config)
    assert info.value.field == "first_header_pointer"


def test_rules_must_match_frame_type() -> None:
    fixed = UslpChannelConfig(frame_length=30)
    variable = UslpChannelConfig()
    with pytest.raises(EncodeError) as info:
        UslpFrame(1, 1, 0, bytes(18), TfdzConstructionRule.NO_SEGMENTATION).encode(fixed)
    assert info.value.field == "tfdz_construction_rules"
    with pytest.raises(EncodeError):
        UslpFrame(1, 1, 0, b"x", 0, first_header_pointer=0).encode(variable)
    raw = bytearray(UslpFrame(1, 1, 0, b"abc").encode(UslpChannelConfig(fecf_size=0)))
    raw[7] = 0x00  # rule 000 in a variable-length frame
    with pytest.raises(DecodeError) as dinfo:
        UslpFrame.decode(bytes(raw), UslpChannelConfig(fecf_size=0))
    assert (dinfo.value.field, dinfo.value.offset) == ("tfdz_construction_rules", 7)


def test_truncated_frames() -> None:
    config = UslpChannelConfig(fecf_size=2, truncated_frame_length=16)
    cap = config.data_field_capacity(truncated=True)
    assert cap == 16 - 4 - 1 - 2
    frame = UslpFrame(0xBEEF, 7, 3, bytes(range(cap)), truncated=True)
    raw = frame.encode(config)
    assert len(raw) == 16 and raw[3] & 1
    assert UslpFrame.decode(raw, config) == frame
    for bad, field in [(dict(vc_frame_count_length=1), "vc_frame_count_length"),
                       (dict(ocf=bytes(4)), "ocf"),
                       (dict(bypass_sequence_control_flag=True), "bypass_sequence_control_flag")]:
        with pytest.raises(EncodeError) as info:
            UslpFrame(**{**_fields(frame), **bad}).encode(config)
        assert info.value.field == field
    with pytest.raises(DecodeError) as dinfo:
        UslpFrame.decode(raw, UslpChannelConfig())
    assert (dinfo.value.field, dinfo.value.offset) == ("end_of_frame_primary_header", 3)
    with pytest.raises(ConfigError):
        UslpChannelConfig(frame_length=40, truncated_frame_length=16)


def test_limits() -> None:
    # 16-bit Frame Length field = total - 1: 65536 octets at most (specs/sources.md §1.6).
    assert MAX_FRAME_LENGTH == 65536
    config = UslpChannelConfig(fecf_size=2)
    big = UslpFrame(1, 1, 0, bytes(config.data_field_capacity()))
    raw = big.encode(config)
    assert len(raw) == 65536 and raw[4:6] == b"\xff\xff"
    assert UslpFrame.decode(raw, config) == big
    with pytest.raises(EncodeError) as info:
        UslpFrame(1, 1, 0, bytes(config.data_field_capacity() + 1)).encode(config)
    assert info.value.field == "frame_length"
    with pytest.raises(ConfigError):
        UslpChannelConfig(frame_length=65537)
    with pytest.raises(ConfigError):
        UslpChannelConfig(fecf_size=3)
    for kwargs, field in [(dict(scid=0x10000), "scid"), (dict(vcid=64), "vcid"),
                          (dict(map_id=16), "map_id"), (dict(uslp_protocol_id=32),
                                                        "uslp_protocol_id"),
                          (dict(vc_frame_count_length=8), "vc_frame_count_length"),
                          (dict(vc_frame_count_length=1, vc_frame_count=256), "vc_frame_count"),
                          (dict(ocf=b"12345"), "ocf"), (dict(insert_zone=b"i"), "insert_zone"),
                          (dict(tfdz_construction_rules=8), "tfdz_construction_rules")]:
        with pytest.raises(EncodeError) as info:
            UslpFrame(**{"scid": 1, "vcid": 1, "data_field": b"x", **kwargs}).encode(
                UslpChannelConfig())
        assert info.value.field == field, kwargs


def test_decode_errors() -> None:
    config = UslpChannelConfig(fecf_size=0)
    raw = UslpFrame(1, 1, 0, b"abc", vc_frame_count_length=2, vc_frame_count=5).encode(config)
    with pytest.raises(TruncatedError) as info:
        UslpFrame.decode(raw[:-1], config)
    assert info.value.field == "frame_length"
    bad = bytearray(raw)
    bad[0] &= 0x0F  # TFVN 0000
    with pytest.raises(DecodeError) as dinfo:
        UslpFrame.decode(bytes(bad), config)
    assert (dinfo.value.field, dinfo.value.offset) == ("transfer_frame_version_number", 0)
    fixed = UslpChannelConfig(frame_length=20, fecf_size=0)
    raw = UslpFrame(1, 1, 0, bytes(10), 0, first_header_pointer=3).encode(fixed)
    bad = bytearray(raw)
    bad[8:10] = (10).to_bytes(2, "big")  # FHP beyond the 10-octet TFDZ
    with pytest.raises(DecodeError) as dinfo:
        UslpFrame.decode(bytes(bad), fixed)
    assert (dinfo.value.field, dinfo.value.offset) == ("first_header_pointer", 8)
    bad = bytearray(raw)
    bad[5] = 18  # Frame Length disagrees with the managed fixed length
    with pytest.raises(DecodeError) as dinfo:
        UslpFrame.decode(bytes(bad), fixed)
    assert dinfo.value.field == "frame_length"
