"""SDLS Extended Procedures PDUs, CCSDS 355.1-B-1 §5: SA management and key (de)activation.

Every procedure travels as one tag-length-value PDU (355.1-B-1 §5.3)::

    Tag (8 bits): Type (1: 0 command, 1 reply) | User Flag (1: 0 = CCSDS-defined) |
                  Service Group (2: 00 key management, 01 SA management,
                  11 security monitoring & control) | Procedure Identifier (4)
    Length (16 bits): length of the Value field in *bits*
    Value: the procedure's parameters

Value fields implemented (SPI and Key IDs are 16 bits, a GVCID 32 bits = TFVN (4) | SCID
(16) | VCID (6) | MAP ID (6), as CryptoLib parses them):

============================ ====== ==============================================
procedure                    PID    value
============================ ====== ==============================================
Start SA (SG 01)             1011   SPI, GVCID...
Stop SA / Expire / Delete    1110 / 1001 / 0100   SPI
Rekey SA                     0110   SPI, Key ID, initial ARSN (or IV), may be empty
Set ARSN                     1010   SPI, ARSN
Set ARSN Window              0101   SPI, window (1 octet if < 256, else 2)
Read ARSN (reply: SPI, ARSN) 0000   SPI
SA Status Request            1111   SPI  (reply: SPI, state octet)
Key Activation (SG 00)       0010   Key ID...
Key Deactivation (SG 00)     0011   Key ID...
============================ ====== ==============================================

They are meant to ride in authenticated ground commands: the receiver processes the frame
with SDLS first and hands the PDU to :meth:`SaDatabase.execute` with the SPI that
authenticated it; an SA may not manage itself. Not implemented: Create SA, OTAR, key
verification/destruction/inventory, monitoring & control, user-defined procedures (their
PDUs decode as :class:`Pdu` but ``execute`` refuses them).

Encodings checked against CryptoLib's unit tests (ut_ep_sa_mgmt.c, ut_ep_key_mgmt.c).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import construct as c

from linkstack.bitfields import BitHeader
from linkstack.errors import DecodeError, EncodeError, TruncatedError
from linkstack.sdls.errors import SaStateError
from linkstack.sdls.sa import Gvcid, SaDatabase, SaProcedure, SaState

__all__ = [
    "GVCID_FIELD",
    "PDU_HEADER",
    "PDU_TAG",
    "DeleteSa",
    "ExpireSa",
    "KeyActivation",
    "KeyDeactivation",
    "KeyProcedure",
    "Pdu",
    "PduType",
    "ReadArsn",
    "ReadArsnReply",
    "RekeySa",
    "SaStatusReply",
    "SaStatusRequest",
    "ServiceGroup",
    "SetArsn",
    "SetArsnWindow",
    "StartSa",
    "StopSa",
    "decode_procedure",
    "execute_pdu",
]

LAYER = "sdls-ep"

PDU_TAG = c.BitStruct(
    "pdu_type" / c.BitsInteger(1),
    "user_flag" / c.Flag,
    "service_group" / c.BitsInteger(2),
    "procedure_id" / c.BitsInteger(4),
)
"""The Tag field of an Extended Procedures PDU (355.1-B-1 §5.3)."""

PDU_HEADER = c.Struct(
    "tag" / PDU_TAG,
    "length" / c.Int16ub,
)
"""Tag + Length (in bits) of an Extended Procedures PDU (355.1-B-1 §5.3)."""

GVCID_FIELD = c.BitStruct(
    "tfvn" / c.BitsInteger(4),
    "scid" / c.BitsInteger(16),
    "vcid" / c.BitsInteger(6),
    "map_id" / c.BitsInteger(6),
)
"""A GVCID as Start SA carries it (32 bits)."""

TAG = BitHeader(LAYER, PDU_TAG)
GVCID = BitHeader(LAYER, GVCID_FIELD)
HEADER_SIZE = 3


class PduType(IntEnum):
    COMMAND = 0
    REPLY = 1


class ServiceGroup(IntEnum):
    """Service Group field (355.1-B-1 §5.3)."""

    KEY_MANAGEMENT = 0b00
    SA_MANAGEMENT = 0b01
    MONITORING_AND_CONTROL = 0b11


class KeyProcedure(IntEnum):
    """Key management Procedure Identifiers (355.1-B-1 §5.4)."""

    OTAR = 0b0001
    ACTIVATION = 0b0010
    DEACTIVATION = 0b0011
    VERIFICATION = 0b0100
    DESTRUCTION = 0b0110
    INVENTORY = 0b0111


@dataclass(frozen=True, slots=True)
class Pdu:
    """One Extended Procedures PDU, undecoded value."""

    service_group: int
    procedure_id: int
    value: bytes = b""
    pdu_type: PduType = PduType.COMMAND
    user_flag: bool = False

    def encode(self) -> bytes:
        bits = 8 * len(self.value)
        if bits > 0xFFFF:
            raise EncodeError(f"{len(self.value)} octets of value exceed the 16-bit length",
                              layer=LAYER, field="length")
        return (TAG.pack(int(self.pdu_type), int(self.user_flag), self.service_group,
                         self.procedure_id) + bits.to_bytes(2, "big") + bytes(self.value))

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> tuple[Pdu, int]:
        """Decode the PDU at ``buf[offset:]``; returns it and the octets it used."""
        if len(buf) - offset < HEADER_SIZE:
            raise TruncatedError("need 3 octets for Tag and Length", layer=LAYER,
                                 field="length", offset=offset)
        ptype, uf, sg, pid = TAG.unpack(buf, offset)
        bits = (buf[offset + 1] << 8) | buf[offset + 2]
        if bits % 8:
            raise DecodeError(f"{bits} bits is not a whole number of octets", layer=LAYER,
                              field="length", offset=offset + 1)
        end = offset + HEADER_SIZE + bits // 8
        if end > len(buf):
            raise TruncatedError(f"Length says {bits // 8} octets of value, "
                                 f"{len(buf) - offset - HEADER_SIZE} present", layer=LAYER,
                                 field="length", offset=offset + 1)
        return cls(sg, pid, bytes(buf[offset + HEADER_SIZE:end]), PduType(ptype),
                   bool(uf)), end - offset


def _spi(spi: int) -> bytes:
    if not 0 <= spi <= 0xFFFF:
        raise EncodeError(f"{spi!r} is outside 0..65535", layer=LAYER, field="spi")
    return spi.to_bytes(2, "big")


def _sa_pdu(pid: SaProcedure, value: bytes, pdu_type: PduType = PduType.COMMAND) -> bytes:
    return Pdu(ServiceGroup.SA_MANAGEMENT, pid, value, pdu_type).encode()


@dataclass(frozen=True, slots=True)
class StartSa:
    spi: int
    gvcids: tuple[Gvcid, ...] = ()

    def encode(self) -> bytes:
        value = _spi(self.spi) + b"".join(GVCID.pack(g.tfvn, g.scid, g.vcid, g.map_id)
                                          for g in self.gvcids)
        return _sa_pdu(SaProcedure.START, value)


@dataclass(frozen=True, slots=True)
class StopSa:
    spi: int

    def encode(self) -> bytes:
        return _sa_pdu(SaProcedure.STOP, _spi(self.spi))


@dataclass(frozen=True, slots=True)
class ExpireSa:
    spi: int

    def encode(self) -> bytes:
        return _sa_pdu(SaProcedure.EXPIRE, _spi(self.spi))


@dataclass(frozen=True, slots=True)
class DeleteSa:
    spi: int

    def encode(self) -> bytes:
        return _sa_pdu(SaProcedure.DELETE, _spi(self.spi))


@dataclass(frozen=True, slots=True)
class RekeySa:
    spi: int
    key_id: int
    sequence: bytes = b""

    def encode(self) -> bytes:
        if not 0 <= self.key_id <= 0xFFFF:
            raise EncodeError(f"{self.key_id!r} is outside 0..65535", layer=LAYER,
                              field="key_id")
        value = _spi(self.spi) + self.key_id.to_bytes(2, "big") + bytes(self.sequence)
        return _sa_pdu(SaProcedure.REKEY, value)


@dataclass(frozen=True, slots=True)
class SetArsn:
    spi: int
    arsn: bytes

    def encode(self) -> bytes:
        return _sa_pdu(SaProcedure.SET_ARSN, _spi(self.spi) + bytes(self.arsn))


@dataclass(frozen=True, slots=True)
class SetArsnWindow:
    spi: int
    window: int

    def encode(self) -> bytes:
        if not 0 <= self.window <= 0xFFFF:
            raise EncodeError(f"{self.window!r} is outside 0..65535", layer=LAYER,
                              field="window")
        size = 1 if self.window < 256 else 2
        return _sa_pdu(SaProcedure.SET_ARSN_WINDOW,
                       _spi(self.spi) + self.window.to_bytes(size, "big"))


@dataclass(frozen=True, slots=True)
class ReadArsn:
    spi: int

    def encode(self) -> bytes:
        return _sa_pdu(SaProcedure.READ_ARSN, _spi(self.spi))


@dataclass(frozen=True, slots=True)
class ReadArsnReply:
    spi: int
    arsn: bytes

    def encode(self) -> bytes:
        return _sa_pdu(SaProcedure.READ_ARSN, _spi(self.spi) + bytes(self.arsn), PduType.REPLY)


@dataclass(frozen=True, slots=True)
class SaStatusRequest:
    spi: int

    def encode(self) -> bytes:
        return _sa_pdu(SaProcedure.STATUS, _spi(self.spi))


@dataclass(frozen=True, slots=True)
class SaStatusReply:
    spi: int
    state: SaState

    def encode(self) -> bytes:
        return _sa_pdu(SaProcedure.STATUS, _spi(self.spi) + bytes([int(self.state)]),
                       PduType.REPLY)


def _key_ids(ids: Sequence[int]) -> bytes:
    out = b""
    for key_id in ids:
        if not 0 <= key_id <= 0xFFFF:
            raise EncodeError(f"{key_id!r} is outside 0..65535", layer=LAYER, field="key_id")
        out += key_id.to_bytes(2, "big")
    return out


@dataclass(frozen=True, slots=True)
class KeyActivation:
    key_ids: tuple[int, ...]

    def encode(self) -> bytes:
        return Pdu(ServiceGroup.KEY_MANAGEMENT, KeyProcedure.ACTIVATION,
                   _key_ids(self.key_ids)).encode()


@dataclass(frozen=True, slots=True)
class KeyDeactivation:
    key_ids: tuple[int, ...]

    def encode(self) -> bytes:
        return Pdu(ServiceGroup.KEY_MANAGEMENT, KeyProcedure.DEACTIVATION,
                   _key_ids(self.key_ids)).encode()


Procedure = (StartSa | StopSa | ExpireSa | DeleteSa | RekeySa | SetArsn | SetArsnWindow
             | ReadArsn | ReadArsnReply | SaStatusRequest | SaStatusReply | KeyActivation
             | KeyDeactivation)


_SPI_ONLY: dict[SaProcedure, type[StopSa | ExpireSa | DeleteSa | ReadArsn | SaStatusRequest]] = {
    SaProcedure.STOP: StopSa, SaProcedure.EXPIRE: ExpireSa, SaProcedure.DELETE: DeleteSa,
    SaProcedure.READ_ARSN: ReadArsn, SaProcedure.STATUS: SaStatusRequest,
}


def _need(value: bytes, n: int, what: str) -> None:
    if len(value) < n:
        raise TruncatedError(f"value has {len(value)} octets, {what} needs {n}", layer=LAYER,
                             field="value", offset=HEADER_SIZE)


def _exact(value: bytes, n: int, what: str) -> None:
    _need(value, n, what)
    if len(value) != n:
        raise DecodeError(f"value has {len(value)} octets, {what} takes {n}", layer=LAYER,
                          field="length", offset=1)


def decode_procedure(buf: bytes) -> Procedure:
    """Decode one PDU into its procedure; :class:`DecodeError` naming the field otherwise."""
    pdu, _ = Pdu.decode(buf)
    v = pdu.value
    if pdu.user_flag:
        raise DecodeError("user-defined procedures are not supported", layer=LAYER,
                          field="user_flag", offset=0)
    reply = pdu.pdu_type is PduType.REPLY
    if pdu.service_group == ServiceGroup.KEY_MANAGEMENT and not reply:
        if pdu.procedure_id in (KeyProcedure.ACTIVATION, KeyProcedure.DEACTIVATION):
            if not v or len(v) % 2:
                raise DecodeError(f"{len(v)} octets is not a list of 16-bit Key IDs",
                                  layer=LAYER, field="length", offset=1)
            ids = tuple(int.from_bytes(v[i:i + 2], "big") for i in range(0, len(v), 2))
            if pdu.procedure_id == KeyProcedure.ACTIVATION:
                return KeyActivation(ids)
            return KeyDeactivation(ids)
    elif pdu.service_group == ServiceGroup.SA_MANAGEMENT:
        _need(v, 2, "an SA procedure")
        spi = int.from_bytes(v[:2], "big")
        pid = pdu.procedure_id
        if reply:
            if pid == SaProcedure.READ_ARSN:
                return ReadArsnReply(spi, bytes(v[2:]))
            if pid == SaProcedure.STATUS:
                _exact(v, 3, "SA Status reply")
                try:
                    return SaStatusReply(spi, SaState(v[2]))
                except ValueError:
                    raise DecodeError(f"state {v[2]} is unknown", layer=LAYER, field="state",
                                      offset=HEADER_SIZE + 2) from None
        elif pid == SaProcedure.START:
            rest = v[2:]
            if len(rest) % 4:
                raise DecodeError(f"{len(rest)} octets is not a list of 32-bit GVCIDs",
                                  layer=LAYER, field="length", offset=1)
            return StartSa(spi, tuple(Gvcid(*GVCID.unpack(rest, i))
                                      for i in range(0, len(rest), 4)))
        elif pid in (SaProcedure.STOP, SaProcedure.EXPIRE, SaProcedure.DELETE,
                     SaProcedure.READ_ARSN, SaProcedure.STATUS):
            _exact(v, 2, SaProcedure(pid).name)
            return _SPI_ONLY[SaProcedure(pid)](spi)
        elif pid == SaProcedure.REKEY:
            _need(v, 4, "Rekey SA")
            return RekeySa(spi, int.from_bytes(v[2:4], "big"), bytes(v[4:]))
        elif pid == SaProcedure.SET_ARSN:
            _need(v, 3, "Set ARSN")
            return SetArsn(spi, bytes(v[2:]))
        elif pid == SaProcedure.SET_ARSN_WINDOW:
            _need(v, 3, "Set ARSN Window")
            if len(v) > 4:
                raise DecodeError("window longer than 2 octets", layer=LAYER, field="length",
                                  offset=1)
            return SetArsnWindow(spi, int.from_bytes(v[2:], "big"))
    raise DecodeError(
        f"{'reply' if reply else 'command'} service group {pdu.service_group:02b} procedure "
        f"{pdu.procedure_id:04b} is not supported", layer=LAYER, field="procedure_id", offset=0)


def execute_pdu(db: SaDatabase, pdu: bytes, *, via_spi: int | None = None) -> bytes | None:
    """Run one command PDU against ``db``; returns the reply PDU (Read ARSN, SA Status) or None.

    Raises :class:`DecodeError` for a malformed or unsupported PDU and
    :class:`~linkstack.sdls.errors.SaStateError` for a procedure the state machine refuses
    (including an SA asked to manage itself through ``via_spi``).
    """
    proc = decode_procedure(pdu)
    if isinstance(proc, ReadArsnReply | SaStatusReply):
        raise DecodeError("a reply PDU is not a command", layer=LAYER, field="pdu_type",
                          offset=0)
    if isinstance(proc, KeyActivation | KeyDeactivation):
        for key_id in proc.key_ids:
            if isinstance(proc, KeyActivation):
                db.activate_key(key_id)
            else:
                db.deactivate_key(key_id)
        return None
    if via_spi is not None and proc.spi == via_spi:
        raise SaStateError("an SA cannot manage itself", procedure=type(proc).__name__,
                           spi=proc.spi)
    if isinstance(proc, StartSa):
        db.start(proc.spi, proc.gvcids)
    elif isinstance(proc, StopSa):
        db.stop(proc.spi)
    elif isinstance(proc, ExpireSa):
        db.expire(proc.spi)
    elif isinstance(proc, DeleteSa):
        db.delete(proc.spi)
    elif isinstance(proc, RekeySa):
        db.rekey(proc.spi, proc.key_id,
                 int.from_bytes(proc.sequence, "big") if proc.sequence else None)
    elif isinstance(proc, SetArsn):
        db.set_arsn(proc.spi, int.from_bytes(proc.arsn, "big"))
    elif isinstance(proc, SetArsnWindow):
        db.set_arsn_window(proc.spi, proc.window)
    elif isinstance(proc, ReadArsn):
        value = db.read_arsn(proc.spi)
        sa = db[proc.spi]
        size = sa.arsn_length if sa.sequence_field == "arsn" else sa.iv_length
        return ReadArsnReply(proc.spi, value.to_bytes(size, "big")).encode()
    elif isinstance(proc, SaStatusRequest):
        return SaStatusReply(proc.spi, db.status(proc.spi)).encode()
    return None
