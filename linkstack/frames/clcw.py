"""Communications Link Control Word (CLCW), CCSDS 232.0-B-4 §4.2.1 / 232.1-B-2 §4.2.1.

The CLCW is the 4-octet report FARM-1 sends back to FOP-1 in the Operational Control
Field (OCF) of every return-link TM, AOS or USLP frame. Bit layout, MSB first:

    Control Word Type (1) = 0 | CLCW Version Number (2) = 00 | Status Field (3) |
    COP in Effect (2) = 01 | Virtual Channel Identification (6) | Reserved Spare (2) |
    No RF Available (1) | No Bit Lock (1) | Lockout (1) | Wait (1) | Retransmit (1) |
    FARM-B Counter (2) | Reserved Spare (1) | Report Value (8) = V(R)
"""

from __future__ import annotations

from dataclasses import dataclass

import construct as c

from linkstack.bitfields import BitHeader
from linkstack.fast_dataclass import fast_init

LAYER = "clcw"

CLCW_STRUCT = c.BitStruct(
    "control_word_type" / c.Const(0, c.BitsInteger(1)),
    "clcw_version_number" / c.Const(0, c.BitsInteger(2)),
    "status_field" / c.BitsInteger(3),
    "cop_in_effect" / c.BitsInteger(2),
    "vcid" / c.BitsInteger(6),
    c.Padding(2),
    "no_rf_available" / c.Flag,
    "no_bit_lock" / c.Flag,
    "lockout" / c.Flag,
    "wait" / c.Flag,
    "retransmit" / c.Flag,
    "farm_b_counter" / c.BitsInteger(2),
    c.Padding(1),
    "report_value" / c.BitsInteger(8),
)
"""The single declaration of the CLCW (232.0-B-4 §4.2.1)."""

HEADER = BitHeader(LAYER, CLCW_STRUCT)
CLCW_SIZE = 4
COP_1 = 0b01


@fast_init
@dataclass(frozen=True, slots=True)
class Clcw:
    """A decoded CLCW. ``report_value`` is FARM-1's V(R), the next expected N(S)."""

    vcid: int
    report_value: int
    lockout: bool = False
    wait: bool = False
    retransmit: bool = False
    farm_b_counter: int = 0
    no_rf_available: bool = False
    no_bit_lock: bool = False
    status_field: int = 0
    cop_in_effect: int = COP_1

    def encode(self) -> bytes:
        return HEADER.pack(
            self.status_field, self.cop_in_effect, self.vcid,
            int(self.no_rf_available), int(self.no_bit_lock), int(self.lockout),
            int(self.wait), int(self.retransmit), self.farm_b_counter & 0b11,
            self.report_value,
        )

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> Clcw:
        (status, cop, vcid, no_rf, no_lock, lockout, wait, retransmit, farm_b,
         vr) = HEADER.unpack(buf, offset)
        # The flags are single bits: ``== 1`` is bool() without the call.
        return cls(vcid, vr, lockout == 1, wait == 1, retransmit == 1, farm_b, no_rf == 1,
                   no_lock == 1, status, cop)
