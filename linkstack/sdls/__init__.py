"""Space Data Link Security: CCSDS 355.0-B-2 core, SA management from 355.1-B-1.

Sans-IO, like the rest of the stack: :class:`SdlsEngine` takes frame octets (and ``now``) and
returns frame octets or typed results; it reads no clock and no socket. Pieces:

- :mod:`~linkstack.sdls.header`: Security Header / Trailer declarations (355.0-B-2 §3.2-3.3);
- :mod:`~linkstack.sdls.layout`: where they go in TC, TM, AOS and USLP frames, using the
  frame modules' own header declarations;
- :mod:`~linkstack.sdls.services`: AES-GCM, GMAC, AES-CMAC, HMAC-SHA-256 on pyca
  ``cryptography``;
- :mod:`~linkstack.sdls.sa`: Security Associations, the 355.1-B-1 state machine
  (unkeyed / keyed / operational) and the anti-replay window;
- :mod:`~linkstack.sdls.keys`: keys, their states, the permission-checked key file;
- :mod:`~linkstack.sdls.config`: the SA file (TOML);
- :mod:`~linkstack.sdls.counters`: the sender's IV/ARSN counters, persisted in blocks;
- :mod:`~linkstack.sdls.pdu`: Extended Procedures PDUs (355.1-B-1 §5);
- :mod:`~linkstack.sdls.engine`: ApplySecurity / ProcessSecurity (355.0-B-2 §3.4-3.5).

Typical use::

    ground = SdlsEngine(load_sa_file("sa.toml", counters=FileCounterStore("ctr.json")), tc_cfg)
    secured = ground.apply(clear_tc_frame)               # clear frame built with
                                                         # ground.clear_channel(spi)
    onboard = SdlsEngine(load_sa_file("sa.toml"), tc_cfg)
    result = onboard.process(secured)                    # FrameAccepted | SdlsRejected

Section numbers: 355.0-B-2 (July 2022) and 355.1-B-1 (February 2019) as read by the authors;
NASA CryptoLib's source comments cite different numbers for some of the same clauses.
"""

from linkstack.sdls.config import find_sa, load_sa_file, read_sa_file, sa_from_dict
from linkstack.sdls.counters import CounterStore, FileCounterStore, MemoryCounterStore
from linkstack.sdls.engine import (
    FrameAccepted,
    ProcessResult,
    RejectReason,
    SdlsCounters,
    SdlsEngine,
    SdlsRejected,
)
from linkstack.sdls.errors import KeyFileError, SaStateError, SequenceExhaustedError
from linkstack.sdls.header import SECURITY_HEADER, SECURITY_TRAILER, SecurityHeader
from linkstack.sdls.keys import Key, KeyRing, KeyState, load_key_file
from linkstack.sdls.sa import (
    SA_TRANSITIONS,
    FrameType,
    Gvcid,
    SaDatabase,
    SaProcedure,
    SaState,
    SecurityAssociation,
)
from linkstack.sdls.services import Algorithm, CipherSuite, ServiceType

__all__ = [
    "SA_TRANSITIONS",
    "SECURITY_HEADER",
    "SECURITY_TRAILER",
    "Algorithm",
    "CipherSuite",
    "CounterStore",
    "FileCounterStore",
    "FrameAccepted",
    "FrameType",
    "Gvcid",
    "Key",
    "KeyFileError",
    "KeyRing",
    "KeyState",
    "MemoryCounterStore",
    "ProcessResult",
    "RejectReason",
    "SaDatabase",
    "SaProcedure",
    "SaState",
    "SaStateError",
    "SdlsCounters",
    "SdlsEngine",
    "SdlsRejected",
    "SecurityAssociation",
    "SecurityHeader",
    "SequenceExhaustedError",
    "ServiceType",
    "find_sa",
    "load_key_file",
    "load_sa_file",
    "read_sa_file",
    "sa_from_dict",
]
