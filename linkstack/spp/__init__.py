"""Space Packets (CCSDS 133.0-B-2) and time codes (CCSDS 301.0-B-4).

The public names of the submodules, importable from the package:
``from linkstack.spp import SpacePacket``.
"""

from linkstack.spp.counters import (
    SequenceCounter,
    count_distance,
)
from linkstack.spp.packet import (
    IDLE_APID,
    MAX_APID,
    MAX_DATA_FIELD_LENGTH,
    MAX_PACKET_LENGTH,
    PRIMARY_HEADER_SIZE,
    SEQUENCE_COUNT_MODULUS,
    PacketType,
    SequenceFlags,
    SpacePacket,
    idle_packet,
    packet_identification,
    packet_length,
)
from linkstack.spp.secondary import (
    SecondaryHeader,
    SecondaryHeaderFormat,
)
from linkstack.spp.segmentation import (
    DuplicatePacket,
    OutOfOrder,
    PartialDiscarded,
    PayloadComplete,
    Reassembler,
    ReassemblyEvent,
    Segmenter,
    SequenceGap,
    SequenceReset,
)
from linkstack.spp.stream import (
    BytesSkipped,
    PacketReceived,
    PacketStreamParser,
    StreamEvent,
)
from linkstack.spp.timecode import (
    CdsFormat,
    CdsTime,
    CucFormat,
    Epoch,
    TimeCodeId,
    TimeFormat,
    TimeValue,
    decode_time_code,
)

__all__ = [
    "IDLE_APID",
    "MAX_APID",
    "MAX_DATA_FIELD_LENGTH",
    "MAX_PACKET_LENGTH",
    "PRIMARY_HEADER_SIZE",
    "SEQUENCE_COUNT_MODULUS",
    "BytesSkipped",
    "CdsFormat",
    "CdsTime",
    "CucFormat",
    "DuplicatePacket",
    "Epoch",
    "OutOfOrder",
    "PacketReceived",
    "PacketStreamParser",
    "PacketType",
    "PartialDiscarded",
    "PayloadComplete",
    "Reassembler",
    "ReassemblyEvent",
    "SecondaryHeader",
    "SecondaryHeaderFormat",
    "Segmenter",
    "SequenceCounter",
    "SequenceFlags",
    "SequenceGap",
    "SequenceReset",
    "SpacePacket",
    "StreamEvent",
    "TimeCodeId",
    "TimeFormat",
    "TimeValue",
    "count_distance",
    "decode_time_code",
    "idle_packet",
    "packet_identification",
    "packet_length",
]
