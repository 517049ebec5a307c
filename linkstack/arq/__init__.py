"""ARQ: COP-1 (FOP-1 and FARM-1, CCSDS 232.1-B-2) and selective repeat.

The public names of the submodules, importable from the package:
``from linkstack.arq import Fop1, Farm1``.
"""

from linkstack.arq.common import (
    Acknowledged,
    Alert,
    ArqCounters,
    Delivered,
    SduAccepted,
    SduRejected,
    TransmitFrame,
    Undelivered,
)
from linkstack.arq.farm1 import (
    Farm1,
    Farm1Event,
    FarmState,
    FrameDiscarded,
)
from linkstack.arq.fop1 import (
    AlertCode,
    Fop1,
    Fop1Event,
    FopDirective,
    FopState,
)
from linkstack.arq.sr import (
    SrConfig,
    SrReceiver,
    SrReceiverEvent,
    SrSender,
    SrSenderEvent,
    TransmitSrFrame,
)

__all__ = [
    "Acknowledged",
    "Alert",
    "AlertCode",
    "ArqCounters",
    "Delivered",
    "Farm1",
    "Farm1Event",
    "FarmState",
    "Fop1",
    "Fop1Event",
    "FopDirective",
    "FopState",
    "FrameDiscarded",
    "SduAccepted",
    "SduRejected",
    "SrConfig",
    "SrReceiver",
    "SrReceiverEvent",
    "SrSender",
    "SrSenderEvent",
    "TransmitFrame",
    "TransmitSrFrame",
    "Undelivered",
]
