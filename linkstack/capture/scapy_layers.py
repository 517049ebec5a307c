"""scapy dissectors for the Space Packet, TC, TM, AOS and USLP headers and the CLCW.

Every field list here is *derived* from the one ``construct`` declaration of its header
(specs/architecture.md principle 2): :func:`fields_from_struct` walks the declaration —
``linkstack.spp.packet.PRIMARY_HEADER`` (CCSDS 133.0-B-2 §4.1.3),
``linkstack.frames.tc.PRIMARY_HEADER`` / ``SEGMENT_HEADER`` (232.0-B-4 §4.1.2, §4.1.3.2),
``linkstack.frames.tm.PRIMARY_HEADER`` / ``SECONDARY_HEADER_ID`` (132.0-B-3 §4.1.2, §4.1.3),
``linkstack.frames.aos.PRIMARY_HEADER`` / ``FHEC_FIELD`` / ``M_PDU_HEADER`` / ``B_PDU_HEADER``
(732.0-B-4 §4.1.2, §4.1.4), ``linkstack.frames.uslp.PRIMARY_HEADER`` / ``TFDF_HEADER``
(732.1-B-2 §4.1.2, §4.1.4.2) and ``linkstack.frames.clcw.CLCW_STRUCT`` (232.0-B-4 §4.2.1) —
reading names, widths and constants through :class:`linkstack.bitfields.BitHeader`; where
the declaration has a ``construct.If`` (USLP's optional header parts) the scapy field is a
``ConditionalField`` that evaluates the declaration's *own* condition on the fields dissected
so far. A field added to a declaration therefore appears in the dissector without an edit here.

Layers and bindings (ports: :data:`linkstack.capture.pcap.PORTS`)::

    UDP:52001 / SPP / Raw(packet data field)
    UDP:52002 / TCFrame / Raw(data field) / FECF
    UDP:52003 / TMFrame / Raw(packet zone) / CLCW (iff ocf_flag) / FECF
    UDP:52004 / AOSFrame / Raw(data unit) / CLCW (iff the VC has an OCF) / FECF
    UDP:52005 / USLPFrame / Raw(TFDZ) / CLCW (iff ocf_flag) / FECF or FECF32

So ``rdpcap("run.pcap")[0][TMFrame].vcid`` or ``...[CLCW].report_value`` read decoded fields.

Managed parameters. Some frame parts are not announced in the frame but fixed per channel by
management (FECF presence, TC Segment Headers, AOS FHEC / Insert Zone / OCF / data unit,
USLP FECF size / Insert Zone). Like Wireshark's protocol preferences, they are module state:
:func:`set_managed_parameters` takes the linkstack channel config objects
(:class:`~linkstack.frames.tc.TcChannelConfig`, ``TmChannelConfig``, ``AosChannelConfig``,
``UslpChannelConfig``); the defaults are each module's ``DEFAULT_CONFIG``.
:func:`managed_parameters` is the same as a context manager.

Building works too: ``bytes(SPP(apid=5, packet_sequence_count=1) / b"abc")`` fills the Packet
Data Length, ``bytes(TCFrame(...) / data / FECF())`` the Frame Length and the CRC
(CCSDS 232.0-B-4 §4.1.4.2; CRC-16/CCITT-FALSE, specs/sources.md §1.7).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import construct as c
from scapy.config import conf
from scapy.fields import (
    BitEnumField,
    BitField,
    ConditionalField,
    Field,
    StrLenField,
    XIntField,
    XShortField,
)
from scapy.layers.inet import UDP
from scapy.packet import Packet, Raw, bind_layers

from linkstack.bitfields import BitHeader
from linkstack.capture.pcap import PORTS
from linkstack.codecs.crc import compute_fecf
from linkstack.frames import aos, clcw, tc, tm, uslp
from linkstack.frames.aos import AosChannelConfig, AosDataUnit
from linkstack.frames.tc import TcChannelConfig
from linkstack.frames.tm import TmChannelConfig
from linkstack.frames.uslp import TfdzConstructionRule, UslpChannelConfig, UslpProtocolId
from linkstack.spp import packet as spp
from linkstack.spp.packet import PacketType, SequenceFlags

__all__ = [
    "CLCW",
    "FECF",
    "FECF32",
    "SPP",
    "AOSFrame",
    "TCFrame",
    "TMFrame",
    "USLPFrame",
    "fields_from_struct",
    "managed_parameters",
    "set_managed_parameters",
]

Cond = Callable[[Packet], bool]

# -- managed parameters ------------------------------------------------------------------------

ChannelConfig = TcChannelConfig | TmChannelConfig | AosChannelConfig | UslpChannelConfig

_MANAGED: dict[type, Any] = {
    TcChannelConfig: tc.DEFAULT_CONFIG,
    TmChannelConfig: tm.DEFAULT_CONFIG,
    AosChannelConfig: aos.DEFAULT_CONFIG,
    UslpChannelConfig: uslp.DEFAULT_CONFIG,
}


def set_managed_parameters(*configs: ChannelConfig) -> None:
    """Use these channel configs (one per frame type) when dissecting and building frames."""
    for config in configs:
        if type(config) not in _MANAGED:
            raise TypeError(f"not a linkstack channel config: {config!r}")
        _MANAGED[type(config)] = config


@contextmanager
def managed_parameters(*configs: ChannelConfig) -> Iterator[None]:
    """:func:`set_managed_parameters` for the duration of a ``with`` block."""
    saved = dict(_MANAGED)
    set_managed_parameters(*configs)
    try:
        yield
    finally:
        _MANAGED.clear()
        _MANAGED.update(saved)


def _tc() -> TcChannelConfig:
    cfg: TcChannelConfig = _MANAGED[TcChannelConfig]
    return cfg


def _tm() -> TmChannelConfig:
    cfg: TmChannelConfig = _MANAGED[TmChannelConfig]
    return cfg


def _aos() -> AosChannelConfig:
    cfg: AosChannelConfig = _MANAGED[AosChannelConfig]
    return cfg


def _uslp() -> UslpChannelConfig:
    cfg: UslpChannelConfig = _MANAGED[UslpChannelConfig]
    return cfg


# -- deriving scapy fields from construct declarations -------------------------------------------


class _AutoBitField(BitField):
    """A BitField whose ``None`` value (the default) is built as 0 and then filled in by the
    layer's ``post_build`` (lengths)."""

    def i2m(self, pkt: Packet | None, x: int | None) -> int:
        return 0 if x is None else int(x)


class _AutoBitEnumField(BitEnumField):
    def i2m(self, pkt: Packet | None, x: Any) -> Any:
        return 0 if x is None else super().i2m(pkt, x)


class _BytesIntField(Field[int, int]):
    """A big-endian unsigned integer of ``length_from(pkt)`` octets (``construct.BytesInteger``
    with a context-dependent length)."""

    __slots__ = ["length_from"]

    def __init__(self, name: str, default: int, length_from: Callable[[Packet], int]) -> None:
        Field.__init__(self, name, default, fmt="B")
        self.length_from = length_from

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, int]:
        n = self.length_from(pkt)
        return s[n:], int.from_bytes(s[:n], "big")

    def addfield(self, pkt: Packet, s: bytes, val: int | None) -> bytes:
        n = self.length_from(pkt)
        return s + int(val or 0).to_bytes(n, "big")


class _ZeroIfNone:
    """Mixin: build ``None`` as zero (the FECF is computed by the frame's ``post_build``)."""

    def i2m(self, pkt: Packet | None, x: int | None) -> int:
        return 0 if x is None else int(x)


class _AutoXShortField(_ZeroIfNone, XShortField):
    pass


class _AutoXIntField(_ZeroIfNone, XIntField):
    pass


def _enum_names(enum: type) -> dict[int, str]:
    return {int(m): m.name.lower() for m in enum}  # type: ignore[attr-defined]


ENUMS: dict[str, dict[int, str]] = {
    "packet_type": _enum_names(PacketType),
    "sequence_flags": _enum_names(SequenceFlags),
    "tfdz_construction_rules": _enum_names(TfdzConstructionRule),
    "uslp_protocol_id": _enum_names(UslpProtocolId),
}
"""Value names shown for enumerated fields (from linkstack's IntEnums)."""


def _bit_fields(header: BitHeader, *, cond: Cond | None = None,
                enums: Mapping[str, Mapping[int, str]] | None = None,
                auto: frozenset[str] = frozenset(), spares: list[int] | None = None,
                spare_name: str = "reserved_spare") -> list[Field[Any, Any]]:
    enums = ENUMS if enums is None else enums
    spares = [0] if spares is None else spares
    out: list[Field[Any, Any]] = []
    for f in header.fields:
        name = f.name
        if name is None:
            spares[0] += 1
            name = spare_name if spares[0] == 1 else f"{spare_name}_{spares[0]}"
        default: int | None = f.const if f.const is not None else (None if name in auto else 0)
        field: Field[Any, Any]
        if name in enums:
            cls = _AutoBitEnumField if name in auto else BitEnumField
            field = cls(name, default, f.width, dict(enums[name]))
        else:
            field = (_AutoBitField if name in auto else BitField)(name, default, f.width)
        out.append(ConditionalField(field, cond) if cond is not None else field)
    return out


def _and(a: Cond | None, b: Cond) -> Cond:
    return b if a is None else (lambda pkt: a(pkt) and b(pkt))


def fields_from_struct(layer: str, struct: c.Construct, *, cond: Cond | None = None,
                       if_cond: Cond | None = None,
                       enums: Mapping[str, Mapping[int, str]] | None = None,
                       auto: frozenset[str] = frozenset(),
                       spare_name: str = "reserved_spare") -> list[Field[Any, Any]]:
    """scapy fields for one construct declaration.

    ``struct`` is a ``BitStruct`` (every member becomes a ``BitField``; constants become the
    field default, spare bits ``reserved_spare``), or a ``Struct`` whose members are such
    ``BitStruct``\\ s, ``If(condition, BitStruct | BytesInteger | Int16ub)`` or plain
    ``Int16ub``. Names and widths come from :class:`~linkstack.bitfields.BitHeader`; an
    ``If`` becomes ``ConditionalField``\\ s whose condition is the declaration's own
    ``condfunc`` applied to a ``construct.Container`` built from the packet's fields.

    ``cond`` guards every field; ``if_cond`` is ANDed into the conditions of ``If`` members
    only; ``auto`` names fields whose ``None`` default the layer fills in on build;
    ``spare_name`` names spare bits (``reserved_spare``, ``reserved_spare_2``, ...).
    """
    inner = struct.subcon if isinstance(struct, c.Transformed) else struct
    if isinstance(struct, c.Transformed) and isinstance(inner, c.Struct):
        return _bit_fields(BitHeader(layer, struct), cond=cond, enums=enums, auto=auto,
                           spare_name=spare_name)
    if not isinstance(struct, c.Struct):
        raise TypeError(f"cannot derive scapy fields from {struct!r}")
    groups: list[tuple[str, c.Construct, Callable[[Any], Any] | None]] = []
    for sub in struct.subcons:
        name, body = sub.name, sub.subcon if isinstance(sub, c.Renamed) else sub
        condfunc = None
        if isinstance(body, c.IfThenElse):
            condfunc, body = body.condfunc, body.thensubcon
        groups.append((name, body, condfunc))
    names = {name: _member_names(layer, body) for name, body, _ in groups}

    def context(pkt: Packet, upto: str) -> c.Container:
        ctx = c.Container()
        for name, _body, condfunc in groups:
            if name == upto:
                break
            if condfunc is not None and not _holds(condfunc, ctx):
                ctx[name] = None
            elif names[name] is None:
                ctx[name] = pkt.getfieldval(name)
            else:
                ctx[name] = c.Container({n: pkt.getfieldval(n) for n in names[name]})
        return ctx

    out: list[Field[Any, Any]] = []
    spares = [0]
    for name, body, condfunc in groups:
        group_cond = cond
        if condfunc is not None:
            group_cond = _and(_and(cond, if_cond) if if_cond else cond,
                              _make_cond(condfunc, context, name))
        if isinstance(body, c.Transformed):
            out += _bit_fields(BitHeader(layer, body), cond=group_cond, enums=enums, auto=auto,
                               spares=spares, spare_name=spare_name)
            continue
        field: Field[Any, Any]
        if isinstance(body, c.BytesInteger):
            length = body.length
            field = _BytesIntField(name, 0, _make_length(length, context, name))
        elif isinstance(body, c.FormatField) and body.sizeof() == 2:
            field = XShortField(name, 0)
        else:
            raise TypeError(f"{layer}: member {name!r} ({body!r}) has no scapy counterpart")
        out.append(ConditionalField(field, group_cond) if group_cond is not None else field)
    return out


def _member_names(layer: str, body: c.Construct) -> tuple[str, ...] | None:
    """Named members of a BitStruct group (spare bits are never in a condition)."""
    if isinstance(body, c.Transformed):
        return tuple(f.name for f in BitHeader(layer, body).fields if f.name is not None)
    return None


def _holds(condfunc: Callable[[Any], Any], ctx: c.Container) -> bool:
    try:
        return bool(condfunc(ctx))
    except (AttributeError, KeyError, TypeError):
        return False


def _make_cond(condfunc: Callable[[Any], Any],
               context: Callable[[Packet, str], c.Container], name: str) -> Cond:
    return lambda pkt: _holds(condfunc, context(pkt, name))


def _make_length(length: Any, context: Callable[[Packet, str], c.Container],
                 name: str) -> Callable[[Packet], int]:
    if callable(length):
        return lambda pkt: int(length(context(pkt, name)))
    return lambda pkt: int(length)


# -- trailers ----------------------------------------------------------------------------------


class CLCW(Packet):
    """Communications Link Control Word in the OCF (CCSDS 232.0-B-4 §4.2.1; fields from
    ``linkstack.frames.clcw.CLCW_STRUCT``)."""

    name = "CLCW"
    fields_desc = fields_from_struct(clcw.LAYER, clcw.CLCW_STRUCT)

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class FECF(Packet):
    """Frame Error Control Field, CRC-16/CCITT-FALSE (232.0-B-4 §4.1.4, 132.0-B-3 §4.1.6).
    Left ``None``, the enclosing frame computes it on build."""

    name = "FECF"
    fields_desc: ClassVar[list[Field[Any, Any]]] = [_AutoXShortField("fecf", None)]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class FECF32(Packet):
    """USLP 4-octet FECF, the Proximity-1 CRC-32 (732.1-B-2 §4.1.6; specs/sources.md §1.7)."""

    name = "FECF-32"
    fields_desc: ClassVar[list[Field[Any, Any]]] = [_AutoXIntField("fecf", None)]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


_FECF_LAYERS: dict[int, type[Packet]] = {2: FECF, 4: FECF32}


class _Framed(Packet):
    """Base of the frame layers: the header fields, then the data field as the payload, then
    the trailer (OCF → :class:`CLCW`, FECF) appended as the last layers."""

    def _frame_end(self, header_size: int, rest: bytes) -> int:
        """Offset in ``rest`` where this frame ends (the remainder is padding)."""
        return len(rest)

    def _trailer(self) -> tuple[int, int]:
        """(OCF octets, FECF octets) of this frame."""
        return 0, 0

    def dissect(self, s: bytes) -> None:
        s = self.pre_dissect(s)
        total = len(s)
        rest = self.do_dissect(s)
        rest = self.post_dissect(rest)
        end = self._frame_end(total - len(rest), rest)
        body, padding = rest[:end], rest[end:]
        ocf_len, fecf_len = self._trailer()
        if ocf_len + fecf_len > len(body):
            ocf_len = fecf_len = 0  # too short to hold its trailer: leave it all as data
        cut = len(body) - ocf_len - fecf_len
        self.do_dissect_payload(body[:cut])
        if ocf_len:
            self.add_payload(CLCW(body[cut:cut + ocf_len], _internal=1, _underlayer=self))
        if fecf_len:
            self.add_payload(_FECF_LAYERS.get(fecf_len, Raw)(body[cut + ocf_len:],
                                                             _internal=1, _underlayer=self))
        if padding:
            self.add_payload(conf.padding_layer(padding, _internal=1, _underlayer=self))

    def _fill_fecf(self, frame: bytes) -> bytes:
        """Compute a ``None`` FECF over the octets before it."""
        layer = self.payload
        while layer and not isinstance(layer, FECF | FECF32):
            layer = layer.payload
        if isinstance(layer, FECF | FECF32) and layer.fecf is None:
            size = 2 if isinstance(layer, FECF) else 4
            tail = len(bytes(layer.payload)) if layer.payload else 0
            end = len(frame) - tail
            frame = frame[:end - size] + compute_fecf(frame[:end - size], size) + frame[end:]
        return frame


def _patch(p: bytes, header: BitHeader, name: str, value: int) -> bytes:
    """OR ``value`` into field ``name`` of the header at the start of ``p`` (built as 0)."""
    f = next(f for f in header.fields if f.name == name)
    word = int.from_bytes(p[:header.size], "big") | ((value & f.mask) << f.shift)
    return word.to_bytes(header.size, "big") + p[header.size:]


# -- Space Packet --------------------------------------------------------------------------------


class SPP(Packet):
    """Space Packet primary header (CCSDS 133.0-B-2 §4.1.3; fields from
    ``linkstack.spp.packet.PRIMARY_HEADER``). The payload is the Packet Data Field."""

    name = "CCSDS Space Packet"
    fields_desc = fields_from_struct(spp.LAYER, spp.PRIMARY_HEADER,
                                     auto=frozenset({"packet_data_length"}))

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        n = (self.packet_data_length or 0) + 1
        return s[:n], s[n:]

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.packet_data_length is None:
            p = _patch(p, spp.HEADER, "packet_data_length", max(len(pay) - 1, 0))
        return p + pay


# -- TC ----------------------------------------------------------------------------------------


def _tc_segmented(pkt: Packet) -> bool:
    return _tc().has_segment_header(pkt.vcid, bool(pkt.control_command_flag))


class TCFrame(_Framed):
    """TC Transfer Frame primary header (232.0-B-4 §4.1.2) and Segment Header (§4.1.3.2, when
    the managed parameters give the VC one); payload: the data field; trailer: FECF."""

    name = "CCSDS TC Transfer Frame"
    fields_desc = (
        fields_from_struct(tc.LAYER, tc.PRIMARY_HEADER, auto=frozenset({"frame_length"}))
        + fields_from_struct(tc.LAYER, tc.SEGMENT_HEADER, cond=_tc_segmented)
    )

    def _frame_end(self, header_size: int, rest: bytes) -> int:
        if self.frame_length is None:
            return len(rest)
        return max(0, self.frame_length + 1 - header_size)

    def _trailer(self) -> tuple[int, int]:
        return 0, (tc.FECF_SIZE if _tc().has_fecf else 0)

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        frame = p + pay
        if self.frame_length is None:
            frame = _patch(frame, tc.HEADER, "frame_length", len(frame) - 1)
        return self._fill_fecf(frame)


# -- TM ----------------------------------------------------------------------------------------


class TMFrame(_Framed):
    """TM Transfer Frame primary header (132.0-B-3 §4.1.2) and Secondary Header (§4.1.3);
    payload: the packet zone; trailer: OCF as :class:`CLCW` (iff ``ocf_flag``), FECF."""

    name = "CCSDS TM Transfer Frame"
    fields_desc = (
        fields_from_struct(tm.LAYER, tm.PRIMARY_HEADER,
                           enums={"first_header_pointer": {
                               tm.FHP_NO_PACKET_START: "no_packet_start",
                               tm.FHP_IDLE_DATA: "idle_data"}})
        + fields_from_struct(tm.LAYER, tm.SECONDARY_HEADER_ID,
                             cond=lambda pkt: bool(pkt.secondary_header_flag))
        + [ConditionalField(
            StrLenField("secondary_header_data", b"",
                        length_from=lambda pkt: pkt.secondary_header_length),
            lambda pkt: bool(pkt.secondary_header_flag))]
    )

    def _trailer(self) -> tuple[int, int]:
        return (tm.OCF_SIZE if self.ocf_flag else 0), (tm.FECF_SIZE if _tm().has_fecf else 0)

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        return self._fill_fecf(p + pay)


# -- AOS ---------------------------------------------------------------------------------------


def _aos_unit(pkt: Packet) -> AosDataUnit:
    return _aos().data_unit(pkt.vcid)


class AOSFrame(_Framed):
    """AOS Transfer Frame primary header (732.0-B-4 §4.1.2), FHEC, Insert Zone and the
    M_PDU / B_PDU header (§4.1.4), as the managed parameters say; payload: the data;
    trailer: OCF as :class:`CLCW` (iff the VC has one), FECF."""

    name = "CCSDS AOS Transfer Frame"
    fields_desc = (
        fields_from_struct(aos.LAYER, aos.PRIMARY_HEADER)
        + fields_from_struct(aos.LAYER, aos.FHEC_FIELD, cond=lambda pkt: _aos().has_fhec)
        + [ConditionalField(
            StrLenField("insert_zone", b"", length_from=lambda pkt: _aos().insert_zone_length),
            lambda pkt: _aos().insert_zone_length > 0)]
        + fields_from_struct(aos.LAYER, aos.M_PDU_HEADER, spare_name="m_pdu_spare",
                             cond=lambda pkt: _aos_unit(pkt) is AosDataUnit.M_PDU,
                             enums={"first_header_pointer": {
                                 tm.FHP_NO_PACKET_START: "no_packet_start",
                                 tm.FHP_IDLE_DATA: "idle_data"}})
        + fields_from_struct(aos.LAYER, aos.B_PDU_HEADER, spare_name="b_pdu_spare",
                             cond=lambda pkt: _aos_unit(pkt) is AosDataUnit.B_PDU,
                             enums={"bitstream_data_pointer": {
                                 aos.BDP_ALL_VALID: "all_valid", aos.BDP_ALL_FILL: "all_fill"}})
    )

    def _trailer(self) -> tuple[int, int]:
        cfg = _aos()
        return ((aos.OCF_SIZE if cfg.has_ocf(self.vcid) else 0),
                (aos.FECF_SIZE if cfg.has_fecf else 0))

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        return self._fill_fecf(p + pay)


# -- USLP --------------------------------------------------------------------------------------


def _uslp_full(pkt: Packet) -> bool:
    return not pkt.end_of_frame_primary_header


class USLPFrame(_Framed):
    """USLP Transfer Frame primary header (732.1-B-2 §4.1.2, truncated or not), Insert Zone
    and TFDF header (§4.1.4.2); payload: the TFDZ; trailer: OCF as :class:`CLCW` (iff
    ``ocf_flag``), FECF (2 or 4 octets, managed)."""

    name = "CCSDS USLP Transfer Frame"
    fields_desc: ClassVar[list[Field[Any, Any]]] = [
        *fields_from_struct(uslp.LAYER, uslp.PRIMARY_HEADER, auto=frozenset({"frame_length"})),
        ConditionalField(
            StrLenField("insert_zone", b"",
                        length_from=lambda pkt: _uslp().insert_zone_length),
            lambda pkt: _uslp().insert_zone_length > 0),
        *fields_from_struct(uslp.LAYER, uslp.TFDF_HEADER, if_cond=_uslp_full),
    ]

    def _frame_end(self, header_size: int, rest: bytes) -> int:
        if self.end_of_frame_primary_header:
            total = _uslp().truncated_frame_length
            return len(rest) if total is None else max(0, total - header_size)
        if self.frame_length is None:
            return len(rest)
        return max(0, self.frame_length + 1 - header_size)

    def _trailer(self) -> tuple[int, int]:
        ocf = 0 if self.end_of_frame_primary_header or not self.ocf_flag else uslp.OCF_SIZE
        return ocf, _uslp().fecf_size

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        frame = p + pay
        if not self.end_of_frame_primary_header and self.frame_length is None:
            # frame_length sits in the second header word (octets 4-6), after the ID fields.
            word = uslp.CONTROL.unpack(frame, uslp.TRUNCATED_HEADER_SIZE)
            fields = dict(zip(uslp.CONTROL.names, word, strict=True))
            fields["frame_length"] = len(frame) - 1
            frame = (frame[:uslp.TRUNCATED_HEADER_SIZE] + uslp.CONTROL.pack_dict(fields)
                     + frame[uslp.HEADER_FIXED_SIZE:])
        return self._fill_fecf(frame)


# -- bindings ----------------------------------------------------------------------------------

for _layer, _cls in (("spp", SPP), ("tc", TCFrame), ("tm", TMFrame), ("aos", AOSFrame),
                     ("uslp", USLPFrame)):
    bind_layers(UDP, _cls, dport=PORTS[_layer])
    bind_layers(UDP, _cls, sport=PORTS[_layer])
