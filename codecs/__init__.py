"""Sync and channel coding (installed as ``linkstack.codecs``).

CRC (FECF), Reed-Solomon (131.0-B), pseudo-randomizers, ASM frame synchronization
and CLTU/BCH (231.0-B). The public names of the submodules are importable from the package:
``from linkstack.codecs import CodingChain``. They are imported on first use (PEP 562), so
that importing one codec, or the frames that use the CRC, does not load numpy and every
other codec. (Type checkers see them as ``Any`` here: import from the submodules,
``from linkstack.codecs.chain import CodingChain``, for their types.)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ASM",
    "FECF_SIZES",
    "TC_RANDOMIZER",
    "TM_RANDOMIZER",
    "BchMode",
    "ChainDecoder",
    "ChainEvent",
    "ChainStats",
    "CltuDecoded",
    "CltuDecoder",
    "CltuEvent",
    "CodedUnitRejected",
    "CodingChain",
    "FrameDecoded",
    "FrameSynced",
    "FrameSynchronizer",
    "Randomizer",
    "ReedSolomon",
    "RsResult",
    "SearchSkipped",
    "Slip",
    "SyncEvent",
    "SyncLocked",
    "SyncLost",
    "append_fecf",
    "check_fecf",
    "compute_fecf",
    "decode_cltu",
    "encode_cltu",
]

_EXPORTS: dict[str, str] = {
    "ASM": "asm",
    "BchMode": "bch",
    "ChainDecoder": "chain",
    "ChainEvent": "chain",
    "ChainStats": "chain",
    "CltuDecoded": "cltu",
    "CltuDecoder": "cltu",
    "CltuEvent": "cltu",
    "CodedUnitRejected": "chain",
    "CodingChain": "chain",
    "FECF_SIZES": "crc",
    "FrameDecoded": "chain",
    "FrameSynced": "asm",
    "FrameSynchronizer": "asm",
    "Randomizer": "randomizer",
    "ReedSolomon": "rs",
    "RsResult": "rs",
    "SearchSkipped": "asm",
    "Slip": "asm",
    "SyncEvent": "asm",
    "SyncLocked": "asm",
    "SyncLost": "asm",
    "TC_RANDOMIZER": "randomizer",
    "TM_RANDOMIZER": "randomizer",
    "append_fecf": "crc",
    "check_fecf": "crc",
    "compute_fecf": "crc",
    "decode_cltu": "cltu",
    "encode_cltu": "cltu",
}
"""The module of each public name."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
