"""The frames that carry packets and FARM-1's CLCW down the RF hop: TM or USLP.

FOP-1 on the ground learns what FARM-1 accepted from the CLCW (232.0-B-4 §4.2.1) that the
spacecraft returns in the Operational Control Field of its downlink frames: every TM frame
(132.0-B-3 §4.1.5) or every USLP frame, with the OCF Flag set (732.1-B-2 §4.1.5).  Packets
share those frames through the packet service (first header pointer; USLP construction rule
000 with a one-octet VC Frame Count, MAP 0).  When nothing is queued and a CLCW is due, TM
sends an Only Idle Data frame (VC 7); USLP sends a frame of the data VC holding one idle
packet (APID 2047) that fills it, so the CLCW still comes down.

Both are fixed-length frames with a CRC-16 FECF, of the length the downlink coding chain
carries (a Reed-Solomon codeblock's data).
"""

from __future__ import annotations

import dataclasses

from linkstack.errors import ConfigError
from linkstack.frames.tm import TmChannelConfig
from linkstack.frames.uslp import UslpChannelConfig
from linkstack.mux.channel import OutgoingFrame
from linkstack.mux.tm import DemuxEvent, TmDemultiplexer, TmMultiplexer
from linkstack.mux.uslp import UslpDemultiplexer, UslpMultiplexer
from linkstack.spp.packet import idle_packet

__all__ = ["DOWNLINK_FRAMES", "ClcwDownlink", "DownlinkEvent", "TmDownlink", "UslpDownlink",
           "clcw_downlink"]

DownlinkEvent = DemuxEvent
"""What a downlink frame gives the ground end: packets (and packet-zone notes), the CLCW in
the OCF, or the frame's rejection / duplication / a Master Channel gap (TM); USLP gives a
subset of these."""

DOWNLINK_FRAMES = ("tm", "uslp")
"""Frame types that can return the CLCW."""


class TmDownlink:
    """Packets and the CLCW in TM Transfer Frames (132.0-B-3), one VC."""

    layer = "tm"

    def __init__(self, scid: int, vcid: int, frame_length: int) -> None:
        self.vcid = vcid
        self.config = TmChannelConfig(frame_length=frame_length, has_fecf=True, has_ocf=True)
        self.mux = TmMultiplexer(scid, self.config, (vcid,))
        self.demux = TmDemultiplexer(scid, self.config)
        self.vcids = (vcid, self.mux.idle_vcid)
        """The VCs the frames go out on: the data VC and the Only Idle Data VC."""

    def add_packet(self, packet: bytes, tag: object = None) -> None:
        self.mux.add_packet(self.vcid, packet, tag)

    def pending_octets(self) -> int:
        return self.mux.pending_octets()

    def next_frame(self, ocf: bytes) -> OutgoingFrame:
        """The next frame: queued packets (completed with idle fill) or an idle frame."""
        frame = self.mux.next_frame(ocf=ocf, flush=True)
        assert frame is not None  # with flush, TM always has a frame (idle if need be)
        return frame

    def receive_frame(self, buf: bytes) -> list[DownlinkEvent]:
        return self.demux.receive_frame(buf)

    @property
    def frames_sent(self) -> int:
        return self.mux.frames_sent


class UslpDownlink:
    """Packets and the CLCW in fixed-length USLP Transfer Frames (732.1-B-2), one VC."""

    layer = "uslp"

    def __init__(self, scid: int, vcid: int, frame_length: int) -> None:
        self.vcid = vcid
        self.config = UslpChannelConfig(frame_length=frame_length, fecf_size=2)
        self.mux = UslpMultiplexer(scid, self.config, [(vcid, 0)], vc_frame_count_length=1,
                                   ocf=True)
        self.demux = UslpDemultiplexer(scid, self.config)
        self.vcids = (vcid,)
        """The VCs the frames go out on (idle frames too)."""
        self._capacity = self.config.data_field_capacity(vc_frame_count_length=1, ocf=True,
                                                         tfdz_construction_rules=0)
        if self._capacity < 7:
            raise ConfigError(f"{frame_length} octets leave no room for an idle packet",
                              key="frame_length")

    def add_packet(self, packet: bytes, tag: object = None) -> None:
        self.mux.add_packet((self.vcid, 0), packet, tag)

    def pending_octets(self) -> int:
        return self.mux.pending_octets()

    def next_frame(self, ocf: bytes) -> OutgoingFrame:
        idle = not self.mux.pending_octets()
        if idle:  # one idle packet fills the zone exactly
            self.mux.add_packet((self.vcid, 0), idle_packet(self._capacity))
        frame = self.mux.next_frame(ocf=ocf, flush=True)
        assert frame is not None
        return dataclasses.replace(frame, idle=True) if idle else frame

    def receive_frame(self, buf: bytes) -> list[DownlinkEvent]:
        return list(self.demux.receive_frame(buf))

    @property
    def frames_sent(self) -> int:
        return self.mux.frames_sent


ClcwDownlink = TmDownlink | UslpDownlink


def clcw_downlink(kind: str, scid: int, vcid: int, frame_length: int) -> ClcwDownlink:
    """The downlink frames of type ``kind`` (``"tm"`` or ``"uslp"``)."""
    if kind == "tm":
        return TmDownlink(scid, vcid, frame_length)
    if kind == "uslp":
        return UslpDownlink(scid, vcid, frame_length)
    raise ConfigError(f"{kind!r}: the CLCW comes down in {' or '.join(DOWNLINK_FRAMES)} "
                      "frames", key="downlink_frame")
