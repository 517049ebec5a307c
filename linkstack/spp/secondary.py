"""Packet secondary header with a time code (CCSDS 133.0-B-2 §4.1.4.2).

When the Secondary Header Flag is 1 (§4.1.3.3.3), the Packet Data Field starts with a
secondary header: a Time Code Field (a CCSDS time code, 301.0-B-4, with its P-field explicit
or implicit, §4.1.4.2.2), then an optional Ancillary Data Field of mission-defined length
(§4.1.4.2.3), then the user data. The standard leaves the layout to the mission, so a
:class:`SecondaryHeaderFormat` states it: which time code (or, with ``self_identifying``, any
CUC/CDS code whose explicit P-field gives its length) and how many ancillary octets follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError
from linkstack.spp.packet import (
    LAYER,
    MAX_DATA_FIELD_LENGTH,
    PRIMARY_HEADER_SIZE,
    PacketType,
    SequenceFlags,
    SpacePacket,
)
from linkstack.spp.timecode import CucFormat, TimeFormat, TimeValue, read_p_field

__all__ = ["SecondaryHeader", "SecondaryHeaderFormat"]


@dataclass(frozen=True, slots=True)
class SecondaryHeader:
    """A decoded secondary header: the time code's format and value, and ancillary data."""

    time_format: TimeFormat | None
    time: TimeValue | None
    ancillary: bytes = b""


@dataclass(frozen=True, slots=True)
class SecondaryHeaderFormat:
    """Mission layout of the packet secondary header (133.0-B-2 §4.1.4.2).

    Args:
        time_format: the time code at the start of the secondary header, or ``None`` for a
            secondary header that is only ancillary data.
        ancillary_length: octets of the Ancillary Data Field after the time code.
        self_identifying: decode any CUC/CDS time code by its explicit P-field instead of
            requiring ``time_format`` (which is still what :meth:`encode` writes).
    """

    time_format: TimeFormat | None = field(default_factory=CucFormat)
    ancillary_length: int = 0
    self_identifying: bool = False

    def __post_init__(self) -> None:
        if self.ancillary_length < 0:
            raise ConfigError(f"{self.ancillary_length!r} is negative", key="ancillary_length")
        if self.time_format is None and self.ancillary_length == 0:
            raise ConfigError("a secondary header holds a time code, ancillary data or both "
                              "(§4.1.4.2.1)", key="time_format")
        if self.self_identifying and (
            self.time_format is None or not self.time_format.explicit_p_field
        ):
            raise ConfigError("self-identifying time codes need an explicit P-field",
                              key="self_identifying")

    @property
    def size(self) -> int | None:
        """Octets of the secondary header, or ``None`` if it depends on the P-field."""
        if self.self_identifying:
            return None
        return (self.time_format.size if self.time_format else 0) + self.ancillary_length

    # -- encode ------------------------------------------------------------------------------
    def encode(self, time: TimeValue | int | float | None, ancillary: bytes = b"", *,
               truncate: bool = False) -> bytes:
        """The secondary header octets for ``time`` (seconds as ``Fraction``/int for CUC, a
        :class:`~linkstack.spp.timecode.CdsTime` or seconds for CDS) and ``ancillary``."""
        if len(ancillary) != self.ancillary_length:
            raise EncodeError(f"{len(ancillary)} ancillary octets, configured "
                              f"{self.ancillary_length}", layer=LAYER, field="ancillary_data")
        if self.time_format is None:
            if time is not None:
                raise EncodeError("this secondary header has no time code field", layer=LAYER,
                                  field="time_code")
            return bytes(ancillary)
        if time is None:
            raise EncodeError("a time is required", layer=LAYER, field="time_code")
        # A CdsTime given to a CUC format is refused by CucFormat.encode (EncodeError).
        code = self.time_format.encode(time, truncate=truncate)  # type: ignore[arg-type]
        return code + bytes(ancillary)

    def build(
        self,
        apid: int,
        sequence_count: int,
        time: TimeValue | int | float | None,
        user_data: bytes = b"",
        *,
        ancillary: bytes = b"",
        packet_type: PacketType = PacketType.TM,
        sequence_flags: SequenceFlags = SequenceFlags.UNSEGMENTED,
        truncate: bool = False,
    ) -> SpacePacket:
        """A packet with the Secondary Header Flag set whose data field is the secondary
        header followed by ``user_data``."""
        data = self.encode(time, ancillary, truncate=truncate) + bytes(user_data)
        if len(data) > MAX_DATA_FIELD_LENGTH:
            raise EncodeError(f"packet data field is {len(data)} octets, must be at most "
                              f"{MAX_DATA_FIELD_LENGTH}", layer=LAYER, field="packet_data_field")
        return SpacePacket(apid, sequence_count, data, packet_type, True, sequence_flags)

    # -- decode ------------------------------------------------------------------------------
    def decode(self, data: bytes, offset: int = 0) -> tuple[SecondaryHeader, int]:
        """Decode the secondary header at ``data[offset]`` (a Packet Data Field); returns it
        and the offset where the user data starts."""
        fmt: TimeFormat | None = self.time_format
        value: TimeValue | None = None
        pos = offset
        if fmt is not None:
            if self.self_identifying:
                fmt = read_p_field(data, offset)
            value = fmt.decode(data, offset)
            pos += fmt.size
        end = pos + self.ancillary_length
        if end > len(data):
            raise TruncatedError(f"ancillary data field needs {self.ancillary_length} octets, "
                                 f"{len(data) - pos} left", layer=LAYER,
                                 field="ancillary_data", offset=pos)
        return SecondaryHeader(fmt, value, bytes(data[pos:end])), end

    def split(self, packet: SpacePacket) -> tuple[SecondaryHeader, bytes]:
        """Split a packet's data field into its secondary header and user data. Error
        offsets count from the start of the packet (primary header included)."""
        if not packet.secondary_header_flag:
            raise DecodeError("the packet has no secondary header", layer=LAYER,
                              field="secondary_header_flag", offset=0)
        try:
            header, end = self.decode(packet.data)
        except DecodeError as exc:
            raise type(exc)(exc.reason, layer=exc.layer, field=exc.field,
                            offset=exc.offset + PRIMARY_HEADER_SIZE) from exc
        return header, packet.data[end:]
