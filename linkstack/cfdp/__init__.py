"""CFDP (CCSDS 727.0-B-5) file delivery over the stack, and onboard model upload.

* :mod:`linkstack.cfdp.entity` — one CFDP entity, sans-IO, on cfdp-py's handlers (class 1
  and class 2), with the fixes its lossy-link behaviour needs and suspend/resume;
* :mod:`linkstack.cfdp.transport` — PDUs in Space Packets on APID 0x102;
* :mod:`linkstack.cfdp.naks` — segment bookkeeping, NAK trimming and splitting;
* :mod:`linkstack.cfdp.timers` — cfdp-py's timers on virtual time;
* :mod:`linkstack.cfdp.filestore` — the in-memory filestore and the CFDP checksums;
* :mod:`linkstack.cfdp.models` — file manifests (SHA-256, size) and the onboard model
  registry that swaps a model in only after its upload verifies.

The virtual-time driver is :mod:`linkstack.sims.file_transfer`.
"""

from linkstack.cfdp.entity import (
    CfdpEntity,
    EntityConfig,
    Fault,
    MetadataReceived,
    ProxyPutRefused,
    PutRefused,
    SegmentReceived,
    StoreFull,
    TransactionFinished,
    TransactionStarted,
    TransferClass,
)
from linkstack.cfdp.filestore import MemoryFilestore
from linkstack.cfdp.transport import CFDP_APID, PduPacketizer, max_pdu_length, pdu_of

__all__ = [
    "CFDP_APID",
    "CfdpEntity",
    "EntityConfig",
    "Fault",
    "MemoryFilestore",
    "MetadataReceived",
    "PduPacketizer",
    "ProxyPutRefused",
    "PutRefused",
    "SegmentReceived",
    "StoreFull",
    "TransactionFinished",
    "TransactionStarted",
    "TransferClass",
    "max_pdu_length",
    "pdu_of",
]
