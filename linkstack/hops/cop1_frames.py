"""The transfer frames that carry COP-1 on an uplink: TC or USLP.

COP-1 (232.1-B-2) asks three things of the frames it sequence-controls: a frame type (AD:
sequence-controlled data, BD: expedited data, BC: control command), an 8-bit N(S) on AD
frames, and a virtual channel.  Both uplink frame types give them:

* TC (232.0-B-4 §4.1.2): Bypass Flag and Control Command Flag; N(S) is the Frame Sequence
  Number.  One Space Packet per frame.
* USLP (732.1-B-2 §4.1.2.8-§4.1.2.11, §4.1.4): Bypass/Sequence Control Flag and Protocol
  Control Command Flag with the same meaning; N(S) is the VC Frame Count — one octet on AD
  frames, none on BD and BC frames (VC Frame Count Length 0).  The Transfer Frame Data Field
  uses construction rule 111 (no segmentation): a data frame holds one Space Packet (USLP
  Protocol Identifier 0), a control frame the COP-1 control command (UPID 1: Unlock
  ``00``, Set V(R) ``82 00 V(R)``, specs/sources.md §1.13).  Variable-length frames with a
  CRC-16 FECF, MAP 0, SCID as the source.

A received frame of either type becomes a :class:`Cop1Frame` (what FARM-1 needs) or a
:class:`~linkstack.mux.channel.FrameRejected` naming the field at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from linkstack.arq.common import FrameType
from linkstack.errors import ConfigError, DecodeError
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.frames.uslp import (
    TfdzConstructionRule,
    UslpChannelConfig,
    UslpFrame,
    UslpProtocolId,
)
from linkstack.mux.channel import FrameIntake, FrameRejected

__all__ = ["UPLINK_FRAMES", "Cop1Frame", "Cop1Frames", "TcCop1Frames", "UslpCop1Frames",
           "cop1_frames"]

UPLINK_FRAMES = ("tc", "uslp")
"""Frame types that can carry COP-1 on the uplink."""

_NS_OCTETS = 1  # VC Frame Count Length on USLP AD frames: N(S) is 8 bits (232.1-B-2 §2.3)


@dataclass(frozen=True, slots=True)
class Cop1Frame:
    """What FARM-1 takes from a received frame."""

    vcid: int
    frame_type: FrameType | None  # None: the illegal flag combination (FARM-1 event E9)
    ns: int
    data: bytes


class Cop1Frames(Protocol):
    """One uplink frame type, as COP-1 sees it."""

    layer: str
    max_frame_length: int

    @property
    def frames(self) -> int:
        """Frames accepted by :meth:`intake`."""

    @property
    def rejected(self) -> int:
        """Frames :meth:`intake` rejected."""

    def capacity(self, vcid: int) -> int:
        """Largest data (one Space Packet) an AD frame of ``vcid`` carries."""

    def encode(self, vcid: int, frame_type: FrameType, ns: int, data: bytes) -> bytes:
        """The frame octets of one COP-1 transmission."""

    def intake(self, buf: bytes) -> Cop1Frame | FrameRejected:
        """Decode and check one received frame."""


class _Counted:
    """The frame counters both frame types take from their :class:`FrameIntake`."""

    _intake: FrameIntake

    @property
    def frames(self) -> int:
        return self._intake.frames

    @property
    def rejected(self) -> int:
        return self._intake.rejected


class TcCop1Frames(_Counted):
    """COP-1 over TC Transfer Frames (232.0-B-4), FECF on."""

    layer = "tc"

    def __init__(self, scid: int, max_frame_length: int = 1024) -> None:
        self.scid = scid
        self.max_frame_length = max_frame_length
        self.config = TcChannelConfig(has_fecf=True, max_frame_length=max_frame_length)
        self._intake = FrameIntake(scid, self.config, TcFrame.decode, "tc")

    def capacity(self, vcid: int) -> int:
        return self.config.data_field_capacity(vcid)

    def encode(self, vcid: int, frame_type: FrameType, ns: int, data: bytes) -> bytes:
        return TcFrame(self.scid, vcid, ns if frame_type is FrameType.AD else 0, data,
                       bypass_flag=frame_type is not FrameType.AD,
                       control_command_flag=frame_type is FrameType.BC).encode(self.config)

    def intake(self, buf: bytes) -> Cop1Frame | FrameRejected:
        frame = self._intake.intake(buf)
        if isinstance(frame, FrameRejected):
            return frame
        ft = FrameType.from_flags(frame.bypass_flag, frame.control_command_flag)
        return Cop1Frame(frame.vcid, ft, frame.ns, frame.data_field)


class UslpCop1Frames(_Counted):
    """COP-1 over variable-length USLP Transfer Frames (732.1-B-2), CRC-16 FECF."""

    layer = "uslp"

    def __init__(self, scid: int, max_frame_length: int = 1024) -> None:
        self.scid = scid
        self.max_frame_length = max_frame_length
        try:
            self.config = UslpChannelConfig(frame_length=None, fecf_size=2,
                                            max_frame_length=max_frame_length)
        except ConfigError as exc:
            raise ConfigError(exc.reason, key="max_frame_length") from None
        self._intake = FrameIntake(scid, self.config, UslpFrame.decode, "uslp")

    def capacity(self, vcid: int) -> int:
        return self.config.data_field_capacity(vc_frame_count_length=_NS_OCTETS)

    def encode(self, vcid: int, frame_type: FrameType, ns: int, data: bytes) -> bytes:
        ad = frame_type is FrameType.AD
        control = frame_type is FrameType.BC
        return UslpFrame(
            self.scid, vcid, data_field=data,
            tfdz_construction_rules=TfdzConstructionRule.NO_SEGMENTATION,
            uslp_protocol_id=(UslpProtocolId.COP_1 if control
                              else UslpProtocolId.SPACE_PACKETS),
            bypass_sequence_control_flag=not ad, protocol_control_command_flag=control,
            vc_frame_count_length=_NS_OCTETS if ad else 0, vc_frame_count=ns if ad else 0,
        ).encode(self.config)

    def intake(self, buf: bytes) -> Cop1Frame | FrameRejected:
        frame = self._intake.intake(buf)
        if isinstance(frame, FrameRejected):
            return frame
        ft = FrameType.from_flags(frame.bypass_sequence_control_flag,
                                  frame.protocol_control_command_flag)
        problem = None
        if frame.truncated:
            problem = ("end_of_frame_primary_header", "a truncated frame has no COP-1 fields")
        elif ft is FrameType.AD and frame.vc_frame_count_length == 0:
            problem = ("vc_frame_count_length", "a sequence-controlled frame needs N(S) in "
                       "the VC Frame Count")
        elif frame.tfdz_construction_rules != TfdzConstructionRule.NO_SEGMENTATION:
            problem = ("tfdz_construction_rules",
                       f"{frame.tfdz_construction_rules:03b}, COP-1 frames here use 111")
        elif ft is not None and frame.uslp_protocol_id != (
                UslpProtocolId.COP_1 if ft is FrameType.BC else UslpProtocolId.SPACE_PACKETS):
            problem = ("uslp_protocol_id", f"{frame.uslp_protocol_id} does not match a "
                       f"{ft.name} frame (0: Space Packets, 1: COP-1 control commands)")
        if problem is not None:
            self._intake.frames -= 1
            self._intake.rejected += 1
            return FrameRejected(DecodeError(problem[1], layer="uslp", field=problem[0],
                                             offset=0))
        # 8-bit N(S): the low octet of a longer count (specs/sources.md §1.6)
        return Cop1Frame(frame.vcid, ft, frame.vc_frame_count & 0xFF, frame.data_field)


def cop1_frames(kind: str, scid: int, max_frame_length: int) -> TcCop1Frames | UslpCop1Frames:
    """The uplink frames of type ``kind`` (``"tc"`` or ``"uslp"``)."""
    if kind == "tc":
        return TcCop1Frames(scid, max_frame_length)
    if kind == "uslp":
        return UslpCop1Frames(scid, max_frame_length)
    raise ConfigError(f"{kind!r}: COP-1 frames are {' or '.join(UPLINK_FRAMES)}",
                      key="uplink_frame")
