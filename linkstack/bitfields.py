"""Fast pack/unpack derived from one ``construct`` ``BitStruct`` declaration.

specs/architecture.md principle 2: each header is declared once with ``construct``. A ``BitStruct``
parses at ~25 µs, too slow for the per-packet hot path, so :class:`BitHeader` reads the
declaration (field names, bit widths, constants) and generates two small functions that
do the same work with one ``int.from_bytes`` and shifts (~1 µs). The construct object
stays the reference: the specs, the scapy layers and the tests use it, and a property
test checks that both paths agree for every header.

Supported fields inside the ``BitStruct``: ``BitsInteger``, ``Flag``, ``Enum`` over
``BitsInteger``, ``Const`` over ``BitsInteger`` (checked on decode) and ``Padding``
(spare bits: written as zero, ignored on decode).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import construct as c

from linkstack.errors import DecodeError, EncodeError, TruncatedError


@dataclass(frozen=True)
class BitField:
    """One field of a header: ``name`` (None for spare bits), ``width`` and ``shift`` in bits,
    ``offset_bits`` from the start of the header, and the ``const`` value it must hold, if any."""

    name: str | None
    width: int
    shift: int
    offset_bits: int
    const: int | None = None

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    @property
    def byte_offset(self) -> int:
        return self.offset_bits // 8


def _const_value(sub: c.Construct) -> int | None:
    if isinstance(sub, c.Const):
        value = sub.value
        return int(value)
    return None


class BitHeader:
    """A fixed-size bit-field header, with fast ``pack``/``unpack`` generated from ``struct``.

    Args:
        layer: layer name used in errors (``"spp"``, ``"tm"``...).
        struct: the ``construct.BitStruct`` declaration (the single source of truth).

    ``unpack(buf, offset=0)`` returns a tuple of ints, one per *named* field, in
    declaration order (``Flag`` as 0/1), constants left out (they are checked instead).
    ``pack(*values)`` takes the same tuple, range-checks every value (raising
    :class:`EncodeError` naming the field) and returns bytes.
    """

    def __init__(self, layer: str, struct: c.Construct) -> None:
        self.layer = layer
        self.struct = struct
        inner = struct.subcon if isinstance(struct, c.Transformed) else struct
        if not isinstance(inner, c.Struct):
            raise TypeError("BitHeader needs a BitStruct")
        fields: list[tuple[str | None, int, int | None]] = []
        for sub in inner.subcons:
            width = sub.sizeof()
            target = sub.subcon if isinstance(sub, c.Renamed) else sub
            fields.append((sub.name, width, _const_value(target)))
        total = sum(w for _, w, _ in fields)
        if total % 8:
            raise TypeError(f"{layer} header is {total} bits, not a whole number of octets")
        self.size = total // 8
        out: list[BitField] = []
        pos = 0
        for name, width, const in fields:
            out.append(BitField(name, width, total - pos - width, pos, const))
            pos += width
        self.fields: tuple[BitField, ...] = tuple(out)
        # "named" fields are the values a caller passes and gets back; constants (e.g. the
        # version number) are checked on decode and filled in on encode.
        self.named: tuple[BitField, ...] = tuple(
            f for f in out if f.name is not None and f.const is None
        )
        self.consts: tuple[BitField, ...] = tuple(f for f in out if f.const is not None)
        self.names: tuple[str, ...] = tuple(f.name for f in self.named)  # type: ignore[misc]
        self.unpack: Callable[..., tuple[int, ...]] = self._make_unpack()
        self.pack: Callable[..., bytes] = self._make_pack()

    # -- code generation ----------------------------------------------------------------
    def _make_unpack(self) -> Callable[..., tuple[int, ...]]:
        n = self.size
        lines = [
            "def unpack(buf, offset=0):",
            f"    if len(buf) - offset < {n}:",
            f"        _trunc(buf, offset, {n})",
            f"    w = _from_bytes(buf[offset:offset + {n}], 'big')",
        ]
        for f in self.consts:
            lines.append(f"    if (w >> {f.shift}) & {f.mask} != {f.const}:")
            lines.append(f"        _badconst({f.name!r}, (w >> {f.shift}) & {f.mask}, "
                             f"{f.const}, offset + {f.byte_offset})")
        parts = [f"(w >> {f.shift}) & {f.mask}" for f in self.named]
        lines.append(f"    return ({', '.join(parts)},)")
        return self._compile("\n".join(lines), "unpack")

    def _make_pack(self) -> Callable[..., bytes]:
        args = ", ".join(f"v{i}" for i in range(len(self.named)))
        lines = [f"def pack({args}):"]
        terms = [f"{f.const << f.shift}" for f in self.consts if f.const]
        for i, f in enumerate(self.named):
            lines.append(f"    if not (0 <= v{i} <= {f.mask}):")
            lines.append(f"        _range({f.name!r}, v{i}, {f.mask})")
            terms.append(f"(v{i} << {f.shift})")
        lines.append(f"    return ({' | '.join(terms) or '0'}).to_bytes({self.size}, 'big')")
        return self._compile("\n".join(lines), "pack")

    def _compile(self, src: str, name: str) -> Callable[..., Any]:
        layer = self.layer

        def _trunc(buf: bytes, offset: int, n: int) -> None:
            raise TruncatedError(
                f"need {n} octets for the header, {max(len(buf) - offset, 0)} left",
                layer=layer, field="header", offset=offset,
            )

        def _badconst(field: str, got: int, want: int, offset: int) -> None:
            raise DecodeError(f"is {got}, must be {want}", layer=layer, field=field, offset=offset)

        def _range(field: str, value: Any, mask: int) -> None:
            raise EncodeError(f"{value!r} is outside 0..{mask}", layer=layer, field=field)

        namespace: dict[str, Any] = {
            "_from_bytes": int.from_bytes, "_trunc": _trunc, "_badconst": _badconst,
            "_range": _range,
        }
        exec(compile(src, f"<{layer} header {name}>", "exec"), namespace)
        fn: Callable[..., Any] = namespace[name]
        fn.__doc__ = f"Generated {name} of the {layer} header (see linkstack.bitfields)."
        return fn

    # -- helpers --------------------------------------------------------------------------
    def unpack_dict(self, buf: bytes, offset: int = 0) -> dict[str, int]:
        """Like :meth:`unpack` but returns ``{field name: value}``."""
        return dict(zip(self.names, self.unpack(buf, offset), strict=True))

    def pack_dict(self, values: dict[str, int]) -> bytes:
        """Like :meth:`pack` from ``{field name: value}``; constants default to their value."""
        args = []
        for f in self.named:
            if f.name in values:
                args.append(int(values[f.name]))
            else:
                raise EncodeError("missing", layer=self.layer, field=str(f.name))
        return self.pack(*args)

    def offset_of(self, name: str) -> int:
        """Byte offset of field ``name`` inside the header."""
        for f in self.named:
            if f.name == name:
                return f.byte_offset
        raise KeyError(name)
