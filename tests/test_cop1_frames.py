"""COP-1 frames on the uplink: TC and USLP (linkstack.hops.cop1_frames)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.arq.common import FrameType
from linkstack.codecs.chain import CodingChain, FrameDecoded
from linkstack.errors import ConfigError, DecodeError, EncodeError
from linkstack.frames.uslp import UslpChannelConfig, UslpFrame
from linkstack.hops.cop1_frames import Cop1Frame, cop1_frames
from linkstack.mux.channel import FrameRejected
from linkstack.spp.packet import SpacePacket

SCID = 0x2A
UNLOCK = b"\x00"
SET_VR = b"\x82\x00\x05"
PACKET = SpacePacket(0x123, 7, b"what is the capital of France?").encode()


@pytest.mark.parametrize("kind", ["tc", "uslp"])
@pytest.mark.parametrize(("frame_type", "ns", "data"), [
    (FrameType.AD, 200, PACKET), (FrameType.BD, 0, PACKET), (FrameType.BC, 0, UNLOCK),
    (FrameType.BC, 0, SET_VR)])
def test_every_frame_type_comes_back(kind: str, frame_type: FrameType, ns: int,
                                     data: bytes) -> None:
    frames = cop1_frames(kind, SCID, 1024)
    buf = frames.encode(3, frame_type, ns, data)
    assert frames.intake(buf) == Cop1Frame(3, frame_type, ns, data)
    assert (frames.frames, frames.rejected) == (1, 0)


@pytest.mark.parametrize(("frame_type", "flags", "count_length", "upid"), [
    (FrameType.AD, (False, False), 1, 0), (FrameType.BD, (True, False), 0, 0),
    (FrameType.BC, (True, True), 0, 1)])
def test_uslp_header_fields_per_frame_type(frame_type: FrameType, flags: tuple[bool, bool],
                                           count_length: int, upid: int) -> None:
    """732.1-B-2 §4.1.2: the two flags as TC's; N(S) in a one-octet VC Frame Count on AD
    frames only; TFDF rule 111 with UPID 0 (packets) or 1 (COP-1 control commands)."""
    frames = cop1_frames("uslp", SCID, 1024)
    buf = frames.encode(5, frame_type, 9 if frame_type is FrameType.AD else 0,
                        SET_VR if frame_type is FrameType.BC else PACKET)
    frame = UslpFrame.decode(buf, UslpChannelConfig(frame_length=None))
    assert (frame.bypass_sequence_control_flag, frame.protocol_control_command_flag) == flags
    assert frame.vc_frame_count_length == count_length
    assert frame.vc_frame_count == (9 if count_length else 0)
    assert (frame.tfdz_construction_rules, frame.uslp_protocol_id) == (0b111, upid)
    assert (frame.scid, frame.vcid, frame.map_id, frame.ocf) == (SCID, 5, 0, None)
    # independent check of the first octets: TFVN 1100, SCID, VCID, MAP, length, flags
    assert buf[0] >> 4 == 0b1100
    assert ((buf[0] & 0x0F) << 12 | buf[1] << 4 | buf[2] >> 4) == SCID
    assert ((buf[2] & 0x07) << 3 | buf[3] >> 5) == 5
    assert (buf[4] << 8 | buf[5]) + 1 == len(buf)
    assert (buf[6] >> 7, (buf[6] >> 6) & 1, buf[6] & 0x07) == (*map(int, flags), count_length)


def _uslp(**fields: object) -> bytes:
    base: dict[str, object] = {"data_field": PACKET, "vc_frame_count_length": 1,
                               "vc_frame_count": 4}
    base.update(fields)
    return UslpFrame(SCID, 1, **base).encode(  # type: ignore[arg-type]
        UslpChannelConfig(frame_length=None, truncated_frame_length=40))


@pytest.mark.parametrize(("buf", "field"), [
    (_uslp(vc_frame_count_length=0, vc_frame_count=0), "vc_frame_count_length"),
    (_uslp(tfdz_construction_rules=0b011), "tfdz_construction_rules"),
    (_uslp(uslp_protocol_id=4), "uslp_protocol_id"),
    (_uslp(bypass_sequence_control_flag=True, protocol_control_command_flag=True),
     "uslp_protocol_id"),
    (UslpFrame(0x2B, 1, data_field=PACKET).encode(), "scid"),
])
def test_uslp_frames_that_cannot_be_cop1_are_rejected_naming_the_field(buf: bytes,
                                                                        field: str) -> None:
    frames = cop1_frames("uslp", SCID, 1024)
    got = frames.intake(buf)
    assert isinstance(got, FrameRejected) and got.error.field == field
    assert (frames.frames, frames.rejected) == (0, 1)


def test_a_long_vc_frame_count_gives_its_low_octet() -> None:
    got = cop1_frames("uslp", SCID, 1024).intake(
        _uslp(vc_frame_count_length=2, vc_frame_count=0x1234))
    assert isinstance(got, Cop1Frame) and got.ns == 0x34


def test_capacity_and_limits() -> None:
    assert cop1_frames("tc", SCID, 1024).capacity(0) == 1024 - 5 - 2
    assert cop1_frames("uslp", SCID, 1024).capacity(0) == 1024 - 8 - 1 - 2
    for kind, length in (("tc", 1025), ("uslp", 65537), ("aos", 100)):
        with pytest.raises(ConfigError):
            cop1_frames(kind, SCID, length)


@pytest.mark.parametrize("length", [12, 1029, 1030, 5000])
def test_uslp_frames_in_cltus_of_any_length(length: int) -> None:
    """231.0-B-4: a CLTU carries a USLP frame; the receiver cuts it with the USLP Frame
    Length field (the BCH fill after it is dropped); > 1029 octets needs more codeblocks."""
    frame = UslpFrame(SCID, 1, data_field=bytes(range(256)) * 20)
    frame = UslpFrame(SCID, 1, data_field=frame.data_field[: length - 7 - 1 - 2])
    buf = frame.encode()
    assert len(buf) == length
    chain = CodingChain.from_name("tc-bch-rand", max_codeblocks=-(-length // 7))
    cltu = chain.encode_frame(buf)
    assert len(cltu) == 2 + 8 * -(-length // 7) + 8
    events = chain.decoder().feed(cltu)
    assert [type(e) for e in events] == [FrameDecoded]
    assert events[0].frame == buf  # type: ignore[union-attr]


def test_cltu_refuses_truncated_uslp_and_reports_cut_frames() -> None:
    chain = CodingChain.from_name("tc-bch")
    truncated = UslpFrame(SCID, 1, data_field=b"abc", truncated=True).encode(
        UslpChannelConfig(frame_length=None, truncated_frame_length=10))
    with pytest.raises(EncodeError) as exc:
        chain.encode_frame(truncated)
    assert exc.value.field == "end_of_frame_primary_header"
    long_frame = UslpFrame(SCID, 1, data_field=bytes(2000)).encode()
    events = CodingChain.from_name("tc-bch").decoder().feed(
        CodingChain.from_name("tc-bch", max_codeblocks=400).encode_frame(long_frame))
    assert len(events) == 1 and not isinstance(events[0], FrameDecoded)
    assert "frame length field says 2010" in str(events[0])


@settings(max_examples=300, deadline=None)
@given(buf=st.binary(max_size=80), kind=st.sampled_from(["tc", "uslp"]))
def test_random_bytes_give_a_frame_or_a_rejection_naming_a_field(buf: bytes, kind: str) -> None:
    got = cop1_frames(kind, SCID, 1024).intake(buf)
    if isinstance(got, FrameRejected):
        assert isinstance(got.error, DecodeError) and got.error.field
    else:
        assert isinstance(got, Cop1Frame)
