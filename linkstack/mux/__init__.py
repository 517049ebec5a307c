"""Virtual channels: packet zones, multiplexers and demultiplexers of TC, TM, AOS and USLP
(132.0-B-3 §4.2-4.3, 232.0-B-4, 732.0-B-4, 732.1-B-2).

The public names of the submodules, importable from the package:
``from linkstack.mux import TmMultiplexer``.
"""

from linkstack.mux.aos import (
    AosDemultiplexer,
    AosMultiplexer,
)
from linkstack.mux.channel import (
    FrameDuplicate,
    FrameRejected,
    OcfReceived,
    OutgoingFrame,
)
from linkstack.mux.packet_zone import (
    FrameGap,
    PacketExtracted,
    PacketsLost,
    PacketZoneBuilder,
)
from linkstack.mux.scheduler import (
    VcScheduler,
)
from linkstack.mux.tc import (
    TcDemultiplexer,
    TcMultiplexer,
    TcOutgoing,
)
from linkstack.mux.tm import (
    MasterChannelGap,
    TmDemultiplexer,
    TmMultiplexer,
)
from linkstack.mux.uslp import (
    UslpDemultiplexer,
    UslpMultiplexer,
)

__all__ = [
    "AosDemultiplexer",
    "AosMultiplexer",
    "FrameDuplicate",
    "FrameGap",
    "FrameRejected",
    "MasterChannelGap",
    "OcfReceived",
    "OutgoingFrame",
    "PacketExtracted",
    "PacketZoneBuilder",
    "PacketsLost",
    "TcDemultiplexer",
    "TcMultiplexer",
    "TcOutgoing",
    "TmDemultiplexer",
    "TmMultiplexer",
    "UslpDemultiplexer",
    "UslpMultiplexer",
    "VcScheduler",
]
