"""Transfer frames: TC (232.0-B-4), TM (132.0-B-3), AOS (732.0-B-4), USLP (732.1-B-2), CLCW.

Each module declares its headers once with ``construct`` and derives the fast
:class:`~linkstack.bitfields.BitHeader` path from that declaration. Every frame is a frozen
dataclass with ``encode(config) -> bytes`` and ``decode(buf, config)``, where ``config`` is
the per-channel managed-parameters object (``TcChannelConfig``, ``TmChannelConfig``,
``AosChannelConfig``, ``UslpChannelConfig``) that also gives ``data_field_capacity``.
"""

from linkstack.frames.aos import AosChannelConfig, AosDataUnit, AosFrame
from linkstack.frames.clcw import Clcw
from linkstack.frames.tc import (
    BcCommand,
    ControlCommand,
    MapReassembler,
    MapSduReceived,
    MapSegment,
    SegmentsDiscarded,
    TcChannelConfig,
    TcFrame,
    TcFrameType,
    bc_frame,
    parse_control_command,
    segment_map_sdu,
    set_vr_command,
    unlock_command,
)
from linkstack.frames.tm import (
    FHP_IDLE_DATA,
    FHP_NO_PACKET_START,
    PacketZone,
    TmChannelConfig,
    TmFrame,
    split_packet_zone,
    tm_frame_header_fields,
)
from linkstack.frames.uslp import (
    TfdzConstructionRule,
    UslpChannelConfig,
    UslpFrame,
    UslpProtocolId,
)

__all__ = [
    "FHP_IDLE_DATA",
    "FHP_NO_PACKET_START",
    "AosChannelConfig",
    "AosDataUnit",
    "AosFrame",
    "BcCommand",
    "Clcw",
    "ControlCommand",
    "MapReassembler",
    "MapSduReceived",
    "MapSegment",
    "PacketZone",
    "SegmentsDiscarded",
    "TcChannelConfig",
    "TcFrame",
    "TcFrameType",
    "TfdzConstructionRule",
    "TmChannelConfig",
    "TmFrame",
    "UslpChannelConfig",
    "UslpFrame",
    "UslpProtocolId",
    "bc_frame",
    "parse_control_command",
    "segment_map_sdu",
    "set_vr_command",
    "split_packet_zone",
    "tm_frame_header_fields",
    "unlock_command",
]
