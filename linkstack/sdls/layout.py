"""Where the Security Header and Trailer go in each frame type (CCSDS 355.0-B-2 §3.1, §4).

The frame layouts are not redefined here: header sizes, fields and checks come from
:mod:`linkstack.frames` (``tc.HEADER``, ``tm_frame_header_fields``, ``aos.HEADER``,
``uslp.ID``/``uslp.CONTROL``...). This module only says, for one frame, where its data
field starts (the Security Header goes there) and where it ends (the Security Trailer goes
there, before the OCF and the FECF):

- TC (232.0-B-4): after the 5-octet primary header, and after the Segment Header when the
  VC uses one (never on BC frames); no OCF. The Frame Length field is updated.
- TM (132.0-B-3): after the primary header and the Transfer Frame Secondary Header if the
  frame has one; the trailer before the OCF (if the OCF Flag is set). Frames are fixed
  length: the clear frame is ``overhead`` octets shorter than the channel's frames.
- AOS (732.0-B-4): after the primary header, the FHEC and the Insert Zone (so the M_PDU /
  B_PDU header is inside the protected data); the trailer before the OCF (per VC). Fixed
  length, like TM.
- USLP (732.1-B-2): after the primary header and the Insert Zone (the TFDF header is
  protected); the trailer before the OCF. The Frame Length field is updated; truncated
  frames carry no Security Header.

The FECF (CRC-16, or USLP's CRC-32) is recomputed over the secured frame by the engine.
CryptoLib's unit tests place the SPI the same way: after the TM Secondary Header
(ut_tm_apply.c SECONDARY_HDR_PRESENT_MAC, a test vector here) and after the AOS Insert
Zone (ut_aos_process.c INSERT_ZONE_PRESENT_PLAINTEXT).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple, TypeVar

from linkstack.errors import ConfigError, DecodeError, TruncatedError
from linkstack.frames import aos, tc, tm, uslp
from linkstack.frames.aos import AosChannelConfig
from linkstack.frames.tc import TcChannelConfig
from linkstack.frames.tm import TmChannelConfig
from linkstack.frames.uslp import UslpChannelConfig
from linkstack.sdls.sa import FrameType

__all__ = [
    "C",
    "ChannelConfig",
    "FrameGeometry",
    "clear_channel",
    "frame_extent",
    "frame_type_of",
    "locate",
    "peek_channel",
    "set_frame_length",
]

ChannelConfig = TcChannelConfig | TmChannelConfig | AosChannelConfig | UslpChannelConfig
C = TypeVar("C", TcChannelConfig, TmChannelConfig, AosChannelConfig, UslpChannelConfig)
"""One channel configuration type (the engine and :func:`clear_channel` keep it)."""


class FrameGeometry(NamedTuple):
    """Where things are in one frame (a named tuple: built for every frame, it must be cheap).

    ``length``: the frame's octets (input beyond it, e.g. CLTU fill after a TC frame, is not
    part of it); ``data_start``: first octet after the frame headers (Security Header
    position); ``data_end``: first octet of the OCF or FECF (end of the Security Trailer);
    ``fecf_size``: 0, 2 or 4.
    """

    length: int
    scid: int
    vcid: int
    data_start: int
    data_end: int
    fecf_size: int


def frame_type_of(channel: ChannelConfig) -> FrameType:
    """The frame type a channel configuration describes."""
    if isinstance(channel, TcChannelConfig):
        return FrameType.TC
    if isinstance(channel, TmChannelConfig):
        return FrameType.TM
    if isinstance(channel, AosChannelConfig):
        return FrameType.AOS
    if isinstance(channel, UslpChannelConfig):
        return FrameType.USLP
    raise TypeError(f"not a channel configuration: {type(channel).__name__}")


def _fixed_length(buf: bytes, expected: int, layer: str) -> int:
    n = len(buf)
    if n < expected:
        raise TruncatedError(f"{n} octets, the channel's frames are {expected}",
                             layer=layer, field="frame_length", offset=n)
    if n > expected:
        raise DecodeError(f"{n} octets, the channel's frames are {expected}",
                          layer=layer, field="frame_length", offset=expected)
    return n


def _geometry(layer: str, length: int, scid: int, vcid: int, start: int, end: int,
              fecf: int) -> FrameGeometry:
    if end < start:
        raise DecodeError(f"headers end at {start} but the data field would end at {end}",
                          layer=layer, field="frame_length", offset=0)
    return FrameGeometry(length, scid, vcid, start, end, fecf)


def locate(buf: bytes, channel: ChannelConfig,
           extent: tuple[int, int] | None = None) -> FrameGeometry:
    """Find the data field of the frame at the start of ``buf``.

    TM and AOS frames must be exactly ``channel.frame_length`` octets; TC and USLP frames
    take their length from the Frame Length field. Raises :class:`DecodeError` (or
    :class:`TruncatedError`) naming the field for anything malformed. ``extent`` is
    :func:`frame_extent`'s result when the caller already has it.
    """
    if isinstance(channel, TmChannelConfig):  # the downlink's frames first: the hot path
        if extent is None:
            length = _fixed_length(buf, channel.frame_length, tm.LAYER)
            fecf = tm.FECF_SIZE if channel.has_fecf else 0
        else:
            length, fecf = extent
        scid, vcid, ocf_flag, _, _, shf, *_ = tm.tm_frame_header_fields(buf)
        start = tm.PRIMARY_HEADER_SIZE
        if shf:
            if length <= start:
                raise TruncatedError("no room for the secondary header", layer=tm.LAYER,
                                     field="secondary_header", offset=start)
            ident = buf[start]
            if ident >> 6:
                raise DecodeError(f"is {ident >> 6}, must be 0", layer=tm.LAYER,
                                  field="secondary_header_version_number", offset=start)
            start += 1 + (ident & 0x3F)
        end = length - fecf - (tm.OCF_SIZE if ocf_flag else 0)
        return _geometry(tm.LAYER, length, scid, vcid, start, end, fecf)
    length, fecf = frame_extent(buf, channel) if extent is None else extent
    if isinstance(channel, TcChannelConfig):
        if length < tc.PRIMARY_HEADER_SIZE:
            raise DecodeError(f"Frame Length says {length} octets, less than the header",
                              layer=tc.LAYER, field="frame_length", offset=2)
        bypass, ctrl, scid, vcid, _, _ = tc.tc_header_fields(buf)
        if tc.frame_type_of(bool(bypass), bool(ctrl)) is None:
            raise DecodeError("Bypass Flag 0 with Control Command Flag 1 is not a valid frame "
                              "type", layer=tc.LAYER, field="control_command_flag", offset=0)
        start = tc.PRIMARY_HEADER_SIZE + (
            tc.SEGMENT_HEADER_SIZE if channel.has_segment_header(vcid, bool(ctrl)) else 0)
        return _geometry(tc.LAYER, length, scid, vcid, start, length - fecf, fecf)
    if isinstance(channel, AosChannelConfig):
        scid, vcid, *_ = aos.aos_header_fields(buf)
        start = (aos.PRIMARY_HEADER_SIZE + (aos.FHEC_SIZE if channel.has_fhec else 0)
                 + channel.insert_zone_length)
        end = length - fecf - (aos.OCF_SIZE if channel.has_ocf(vcid) else 0)
        return _geometry(aos.LAYER, length, scid, vcid, start, end, fecf)
    if isinstance(channel, UslpChannelConfig):
        scid, _, vcid, _, truncated = uslp.ID.unpack(buf)
        if truncated:
            raise DecodeError("truncated frames carry no Security Header", layer=uslp.LAYER,
                              field="end_of_frame_primary_header", offset=3)
        _, _, _, ocf_flag, vcfc_len = uslp.CONTROL.unpack(buf, uslp.TRUNCATED_HEADER_SIZE)
        start = uslp.HEADER_FIXED_SIZE + vcfc_len + channel.insert_zone_length
        end = length - fecf - (uslp.OCF_SIZE if ocf_flag else 0)
        return _geometry(uslp.LAYER, length, scid, vcid, start, end, fecf)
    raise TypeError(f"not a channel configuration: {type(channel).__name__}")


def peek_channel(buf: bytes, channel: ChannelConfig) -> tuple[int, int]:
    """``(scid, vcid)`` from the primary header alone (no length checks)."""
    if isinstance(channel, TcChannelConfig):
        _, _, scid, vcid, _, _ = tc.tc_header_fields(buf)
        return scid, vcid
    if isinstance(channel, TmChannelConfig):
        scid, vcid, *_ = tm.tm_frame_header_fields(buf)
        return scid, vcid
    if isinstance(channel, AosChannelConfig):
        scid, vcid, *_ = aos.aos_header_fields(buf)
        return scid, vcid
    scid, _, vcid, _, _ = uslp.ID.unpack(buf)
    return scid, vcid


def frame_extent(buf: bytes, channel: ChannelConfig) -> tuple[int, int]:
    """``(length, fecf_size)`` of the frame at the start of ``buf``, before any other check.

    This is all the receiver needs to check the FECF first: the channel's fixed length (TM,
    AOS, fixed USLP; ``buf`` must be exactly that long) or the Frame Length field (TC,
    variable USLP; octets after the frame are ignored).
    """
    if isinstance(channel, TcChannelConfig):
        length = tc.tc_frame_length(buf)
        if length > len(buf):
            raise TruncatedError(f"Frame Length says {length} octets, buffer holds {len(buf)}",
                                 layer=tc.LAYER, field="frame_length", offset=2)
        if length > channel.max_frame_length:
            raise DecodeError(f"{length} octets exceeds the managed maximum "
                              f"{channel.max_frame_length}", layer=tc.LAYER,
                              field="frame_length", offset=2)
        return length, (tc.FECF_SIZE if channel.has_fecf else 0)
    if isinstance(channel, TmChannelConfig):
        return (_fixed_length(buf, channel.frame_length, tm.LAYER),
                tm.FECF_SIZE if channel.has_fecf else 0)
    if isinstance(channel, AosChannelConfig):
        return (_fixed_length(buf, channel.frame_length, aos.LAYER),
                aos.FECF_SIZE if channel.has_fecf else 0)
    if isinstance(channel, UslpChannelConfig):
        return uslp.uslp_frame_length(buf, channel), channel.fecf_size
    raise TypeError(f"not a channel configuration: {type(channel).__name__}")


def set_frame_length(frame: bytearray, channel: ChannelConfig, total: int) -> None:
    """Rewrite the Frame Length field (TC, USLP) for a frame of ``total`` octets.

    TM and AOS have no such field. Raises :class:`~linkstack.errors.EncodeError` naming
    ``frame_length`` if ``total`` does not fit the field.
    """
    if isinstance(channel, TcChannelConfig):
        size = tc.PRIMARY_HEADER_SIZE
        bypass, ctrl, scid, vcid, _, fsn = tc.tc_header_fields(bytes(frame[:size]))
        frame[:size] = tc.HEADER.pack(bypass, ctrl, scid, vcid, total - 1, fsn)
    elif isinstance(channel, UslpChannelConfig):
        at = uslp.TRUNCATED_HEADER_SIZE
        _, bypass, pcc, ocf_flag, vcfc_len = uslp.CONTROL.unpack(bytes(frame[at:at + 3]))
        frame[at:at + 3] = uslp.CONTROL.pack(total - 1, bypass, pcc, ocf_flag, vcfc_len)


def clear_channel(channel: C, overhead: int) -> C:
    """The channel configuration of the *clear* frames when SDLS adds ``overhead`` octets.

    Fixed-length channels (TM, AOS, fixed USLP) get frames ``overhead`` octets shorter;
    variable-length ones (TC, variable USLP) a maximum that much smaller. The layer above
    builds the frames it hands to ``apply`` with it, and decodes with it what ``process``
    returns. Raises :class:`ConfigError` if nothing is left for data.
    """
    try:
        if isinstance(channel, TcChannelConfig):
            return replace(channel, max_frame_length=channel.max_frame_length - overhead)
        if isinstance(channel, TmChannelConfig | AosChannelConfig):
            return replace(channel, frame_length=channel.frame_length - overhead)
        if isinstance(channel, UslpChannelConfig):
            if channel.frame_length is not None:
                return replace(channel, frame_length=channel.frame_length - overhead)
            return replace(channel, max_frame_length=channel.max_frame_length - overhead)
    except ConfigError as exc:
        raise ConfigError(f"{exc.reason} once SDLS adds {overhead} octets", key=exc.key) from None
    raise TypeError(f"not a channel configuration: {type(channel).__name__}")
