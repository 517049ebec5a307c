"""Rendering primitives of the specs generator (``linkstack specs build``).

Everything a page of ``specs/`` is made of, derived from the code rather than written by hand:

- :func:`struct_fields` walks a ``construct`` declaration (``BitStruct`` bit fields through
  :class:`~linkstack.bitfields.BitHeader`, byte-aligned ``Struct`` fields, ``If`` and
  variable-length fields) into a flat list of :class:`FieldInfo`;
- :func:`bit_diagram` draws an RFC-style ASCII diagram (bits 0..31 per row, bit 0 = the first
  transmitted, most significant bit, as in every CCSDS Blue Book) from those fields;
- :func:`field_table` renders the field table from the same fields and a dict of
  :class:`FieldDoc` (the Blue Book name, meaning, allowed values and section of each field),
  keyed by the construct field name so a test can check that nothing is missing;
- :func:`hex_dump` prints octets with the part each span belongs to, :func:`header_rows`
  decodes a header field by field (and cross-checks the construct parse against the
  :class:`~linkstack.bitfields.BitHeader` fast path).

Output is deterministic: no timestamps, ordered containers only, no floats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import construct as c

from linkstack.bitfields import BitHeader
from linkstack.errors import LinkstackError

__all__ = [
    "SPARE",
    "Example",
    "FieldDoc",
    "FieldInfo",
    "HeaderSpec",
    "Page",
    "Row",
    "Span",
    "SpecBuildError",
    "bit_diagram",
    "example_block",
    "field_table",
    "fmt_int",
    "header_block",
    "header_rows",
    "hex_dump",
    "md_escape",
    "md_table",
    "parse_hex_dump",
    "struct_fields",
]

SPARE = "reserved_spare"
"""Key of the :class:`FieldDoc` describing spare (``Padding``) bits of a header."""

ROW_BITS = 32
HEX_PER_LINE = 16


class SpecBuildError(LinkstackError):
    """The specs cannot be generated: a declaration, a doc dict, an example or a named test
    does not agree with the code (the message says which)."""


# ---------------------------------------------------------------------------------------------
# Field documentation and the walk over construct declarations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldDoc:
    """What a student needs to know about one header field.

    Attributes:
        title: the Blue Book name of the field (e.g. "Spacecraft Identifier").
        meaning: what it says, in one or two sentences.
        allowed: the values it may take (ranges, constants, special values).
        section: the Blue Book section, e.g. "§4.1.2.6" (the book is named by the page).
        abbr: a short label for the bit diagram when the title does not fit.
        values: names of particular values, shown next to the value in worked examples.
    """

    title: str
    meaning: str
    allowed: str
    section: str
    abbr: str = ""
    values: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldInfo:
    """One field of a declaration, flattened.

    ``key`` is the construct name (:data:`SPARE` for padding), ``width`` the size in bits
    (None: variable length), ``offset`` the bit offset from the start of the declaration
    (None once a variable-length field came before), ``const`` the value a ``Const`` field must
    hold, ``conditional`` true for fields inside ``If`` (present only in some frames).
    """

    key: str
    width: int | None
    offset: int | None
    const: int | None = None
    conditional: bool = False
    padding: bool = False

    @property
    def code_name(self) -> str:
        """The name as the code spells it ("—" for spare bits, which have none)."""
        return "—" if self.padding else self.key


def _bitstruct_inner(sub: c.Construct) -> c.Struct | None:
    """The ``Struct`` inside a ``BitStruct`` (a ``Transformed``), else None."""
    if isinstance(sub, c.Transformed) and isinstance(sub.subcon, c.Struct):
        return sub.subcon
    return None


def _sizeof_bits(sub: c.Construct, in_bits: bool) -> int | None:
    try:
        size = sub.sizeof()
    except (c.SizeofError, KeyError, AttributeError, TypeError):
        return None
    return size if in_bits else 8 * size


def struct_fields(struct: c.Construct) -> list[FieldInfo]:
    """Flatten a construct declaration into :class:`FieldInfo` rows, in wire order.

    ``BitStruct`` bit fields come from :class:`~linkstack.bitfields.BitHeader` (the same walk
    the fast path uses); nested ``BitStruct`` and ``If`` members are expanded in place; fields
    whose size depends on the data (``PascalString``, ``Prefixed``, ``PrefixedArray``,
    ``BytesInteger`` with a computed length) are variable; ``Terminated`` is left out.
    """
    out: list[FieldInfo] = []
    _walk(struct, out, [0], in_bits=False, conditional=False)
    return out


def _walk(struct: c.Construct, out: list[FieldInfo], pos: list[int | None], *, in_bits: bool,
          conditional: bool) -> None:
    inner = _bitstruct_inner(struct)
    if inner is not None:
        header = BitHeader("specs", struct)
        base = pos[0]
        for f in header.fields:
            out.append(FieldInfo(
                f.name or SPARE, f.width, None if base is None else base + f.offset_bits,
                f.const, conditional, padding=f.name is None,
            ))
        pos[0] = None if base is None else base + 8 * header.size
        return
    if not isinstance(struct, c.Struct):
        raise SpecBuildError(f"cannot lay out {type(struct).__name__}; expected a Struct or "
                             "BitStruct")
    for sub in struct.subcons:
        name = sub.name
        target = sub.subcon if isinstance(sub, c.Renamed) else sub
        cond = conditional
        if isinstance(target, c.IfThenElse):
            target = target.thensubcon
            cond = True
        if isinstance(target, type(c.Terminated)):
            continue
        if _bitstruct_inner(target) is not None or isinstance(target, c.Struct):
            _walk(target, out, pos, in_bits=in_bits, conditional=cond)
            continue
        const = None
        if isinstance(target, c.Const):
            const = int(target.value)
        width = _sizeof_bits(target, in_bits)
        if name is None:
            if width is None:
                raise SpecBuildError("an unnamed field of variable length")
            out.append(FieldInfo(SPARE, width, pos[0], None, cond, padding=True))
        else:
            out.append(FieldInfo(name, width, pos[0], const, cond))
        if width is None or pos[0] is None:
            pos[0] = None
        else:
            pos[0] += width


def doc_keys(fields: Iterable[FieldInfo]) -> list[str]:
    """The keys a doc dict must have for these fields (each once, in wire order)."""
    keys: list[str] = []
    for f in fields:
        if f.key not in keys:
            keys.append(f.key)
    return keys


# ---------------------------------------------------------------------------------------------
# Markdown helpers
# ---------------------------------------------------------------------------------------------


def md_escape(text: str) -> str:
    """Escape a table cell (pipes, newlines)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub Markdown table; cells are escaped."""
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise SpecBuildError(f"table row {row!r} has {len(row)} cells, not {len(header)}")
        lines.append("| " + " | ".join(md_escape(str(cell)) for cell in row) + " |")
    return "\n".join(lines)


def fmt_int(value: int, width: int | None = None) -> str:
    """Decimal, with hex for fields wider than 4 bits: ``42 (0x02A)``."""
    if width is None or width <= 4:
        return str(value)
    digits = -(-width // 4)
    return f"{value} (0x{value:0{digits}X})"


# ---------------------------------------------------------------------------------------------
# Bit diagrams
# ---------------------------------------------------------------------------------------------


@dataclass
class _Cell:
    key: str
    bits: int
    labels: tuple[str, ...]


def _labels(f: FieldInfo, docs: Mapping[str, FieldDoc]) -> tuple[str, ...]:
    doc = docs.get(f.key)
    cands: list[str] = []
    if doc is not None:
        cands.append(doc.title)
        if doc.abbr:
            cands.append(doc.abbr)
    if f.padding:
        cands.append("Spare")
        cands.append("Sp")
    return tuple(cands)


def bit_diagram(fields: Sequence[FieldInfo], docs: Mapping[str, FieldDoc],
                variable_text: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """RFC-style diagram of ``fields``; returns ``(diagram text, legend lines)``.

    Rows are 32 bits wide (narrower when the whole declaration is), each bit two characters;
    a field gets its Blue Book title when it fits, else its abbreviation, else a letter
    explained in the legend. A field crossing a row boundary is drawn in both rows.
    Variable-length fields are full-width rows between slashes (``variable_text`` gives their
    text, default: the title and "variable length").
    """
    variable_text = variable_text or {}
    fixed_only = all(f.width is not None for f in fields)
    total = sum(f.width or 0 for f in fields)
    row_width = min(ROW_BITS, total) if fixed_only else ROW_BITS
    rows: list[tuple[str, list[_Cell] | str]] = []  # ("bits", cells) or ("var", text)
    cur: list[_Cell] = []
    pos = 0
    for f in fields:
        if f.width is None:
            if cur:
                rows.append(("bits", cur))
                cur, pos = [], 0
            doc = docs.get(f.key)
            text = variable_text.get(f.key) or (
                f"{doc.title if doc else f.key} (variable length)")
            rows.append(("var", text))
            continue
        remaining = f.width
        first_part = True
        while remaining:
            take = min(remaining, row_width - pos)
            labels = _labels(f, docs)
            if not first_part:
                labels = tuple(x for label in labels for x in (f"{label} (cont.)", label))
            first_part = False
            cur.append(_Cell(f.key, take, labels))
            remaining -= take
            pos += take
            if pos == row_width:
                rows.append(("bits", cur))
                cur, pos = [], 0
    if cur:
        rows.append(("bits", cur))

    legend_keys: dict[str, str] = {}
    abbreviations: dict[str, str] = {}

    def label_for(cell: _Cell) -> str:
        room = 2 * cell.bits - 1
        for cand in cell.labels:
            if len(cand) <= room:
                doc = docs.get(cell.key)
                base = cand.removesuffix(" (cont.)")
                if doc is not None and base != doc.title:
                    abbreviations[base] = doc.title
                return cand
        if cell.key not in legend_keys:
            legend_keys[cell.key] = chr(ord("a") + len(legend_keys))
        return legend_keys[cell.key]

    def width_of(row: tuple[str, list[_Cell] | str]) -> int:
        kind, body = row
        return row_width if kind == "var" else sum(cell.bits for cell in body)  # type: ignore[union-attr]

    def border(bits: int) -> str:
        return "+" + "-+" * bits

    lines = [_ruler_tens(row_width), _ruler_units(row_width)]
    for i, row in enumerate(rows):
        prev = width_of(rows[i - 1]) if i else 0
        lines.append(border(max(prev, width_of(row))))
        kind, body = row
        if kind == "var":
            text = str(body)
            room = 2 * row_width - 1
            if len(text) > room:
                text = text[: room - 1] + "…"
            lines.append("/" + text.center(room) + "/")
        else:
            parts = []
            for cell in body:  # type: ignore[union-attr]
                parts.append(label_for(cell).center(2 * cell.bits - 1))
            lines.append("|" + "|".join(parts) + "|")
    if rows:
        lines.append(border(width_of(rows[-1])))
    legend = [f"`{abbr}` {title}" for abbr, title in abbreviations.items()]
    for key, letter in legend_keys.items():
        doc = docs.get(key)
        legend.append(f"`{letter}` {doc.title if doc else key}")
    return "\n".join(line.rstrip() for line in lines), legend


def _ruler_tens(width: int) -> str:
    out = []
    for i in range(width):
        out.append(str(i // 10) if i % 10 == 0 else " ")
    return " " + " ".join(out)


def _ruler_units(width: int) -> str:
    return " " + " ".join(str(i % 10) for i in range(width))


# ---------------------------------------------------------------------------------------------
# Header specs: diagram + field table, and the field-by-field decoding of examples
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderSpec:
    """One header (or other fixed layout) documented on a page.

    ``struct`` is the construct declaration the code uses (the single source of truth);
    layouts with no construct declaration (the codec framings) give ``fields`` instead, built
    from the module constants. ``docs`` must have exactly one entry per field key.
    """

    key: str
    title: str
    docs: Mapping[str, FieldDoc]
    declared_in: str
    struct: c.Construct | None = None
    explicit_fields: tuple[FieldInfo, ...] = ()
    variable_text: Mapping[str, str] = field(default_factory=dict)
    note: str = ""

    def fields(self) -> list[FieldInfo]:
        if self.struct is not None:
            return struct_fields(self.struct)
        return list(self.explicit_fields)

    def check_docs(self) -> None:
        """Raise :class:`SpecBuildError` unless the doc dict covers exactly the fields."""
        want = doc_keys(self.fields())
        missing = [k for k in want if k not in self.docs]
        extra = [k for k in self.docs if k not in want]
        if missing or extra:
            raise SpecBuildError(
                f"{self.key}: field docs out of date with {self.declared_in} "
                f"(missing {missing}, not in the declaration {extra})"
            )


def field_table(spec: HeaderSpec, name_header: str = "Field (Blue Book name)") -> str:
    """The field table: position, width, Blue Book name, code name, meaning, values, section."""
    rows = []
    for f in spec.fields():
        doc = spec.docs[f.key]
        if f.width is None:
            where, width = "variable", "variable"
        else:
            if f.offset is None:
                where = "after the above"
            elif f.width == 1:
                where = f"bit {f.offset}"
            else:
                where = f"bits {f.offset}–{f.offset + f.width - 1}"
            width = str(f.width)
        if f.conditional:
            where += " (if present)"
        allowed = doc.allowed
        if f.const is not None and not allowed:
            allowed = f"always {f.const}"
        code = f"`{f.code_name}`" if not f.padding else "—"
        rows.append((where, width, doc.title, code, doc.meaning, allowed, doc.section))
    return md_table(
        ("Position", "Bits", name_header, "Name in code", "Meaning", "Allowed values",
         "Section"),
        rows,
    )


def header_block(spec: HeaderSpec, book: str, level: int = 3,
                 name_header: str = "Field (Blue Book name)") -> str:
    """Heading, diagram, legend and field table of one header, with the test's marker."""
    spec.check_docs()
    fields = spec.fields()
    diagram, legend = bit_diagram(fields, spec.docs, spec.variable_text)
    fixed = [f.width for f in fields if f.width is not None]
    size = ""
    if all(f.width is not None for f in fields):
        total = sum(fixed)
        octets = total // 8
        size = (f" — {total} bits ({octets} octet{'s' if octets != 1 else ''})"
                if total % 8 == 0 else f" — {total} bits")
    out = [f"{'#' * level} {spec.title}{size}", "",
           f"Declared in `{spec.declared_in}`; {book}.", ""]
    if spec.note:
        out += [spec.note, ""]
    out += ["```text", diagram, "```", ""]
    if legend:
        out += ["Labels: " + "; ".join(legend) + ".", ""]
    out += [f"<!-- header: {spec.key} -->", field_table(spec, name_header), ""]
    return "\n".join(out)


Row = tuple[str, str, str, str, str]
"""One line of a worked example's decoding: part, field, position, raw bits, value."""


def _bits(octets: bytes, offset_bits: int, width: int) -> int:
    total = len(octets) * 8
    if offset_bits + width > total:
        raise SpecBuildError(f"bits {offset_bits}..{offset_bits + width} beyond {total}")
    word = int.from_bytes(octets, "big")
    return (word >> (total - offset_bits - width)) & ((1 << width) - 1)


def _raw(value: int, width: int) -> str:
    if width <= 16:
        return format(value, f"0{width}b")
    return f"0x{value:0{-(-width // 4)}X}"


def header_rows(
    spec: HeaderSpec, octets: bytes, start: int, part: str,
    only: Callable[[FieldInfo], bool] | None = None,
) -> tuple[list[Row], dict[str, int]]:
    """Decode the fixed-width fields of ``spec`` found at ``octets[start:]`` field by field.

    The values are read straight from the bits at the offsets the declaration gives; they are
    then checked against ``construct``'s parse of the declaration and, for ``BitStruct``
    declarations, against the :class:`~linkstack.bitfields.BitHeader` fast path
    (a disagreement is a :class:`SpecBuildError`). Returns the rows and ``{key: value}``.
    """
    fields = [f for f in spec.fields() if f.width is not None and f.offset is not None]
    if only is not None:
        fields = [f for f in fields if only(f)]
    end_bits = max(f.offset + f.width for f in fields)  # type: ignore[operator]
    size = -(-end_bits // 8)
    chunk = bytes(octets[start:start + size])
    if len(chunk) < size:
        raise SpecBuildError(f"{spec.key}: example too short for the header")
    rows: list[Row] = []
    values: dict[str, int] = {}
    for f in fields:
        assert f.width is not None and f.offset is not None
        value = _bits(chunk, f.offset, f.width)
        doc = spec.docs[f.key]
        shown = fmt_int(value, f.width)
        name = doc.values.get(value)
        if name:
            shown += f" = {name}"
        if f.const is not None and value != f.const:
            raise SpecBuildError(f"{spec.key}: {f.key} is {value}, the declaration says "
                                 f"{f.const}")
        where = f"bit {f.offset}" if f.width == 1 else f"bits {f.offset}–{f.offset + f.width - 1}"
        rows.append((part, doc.title, where, _raw(value, f.width), shown))
        if not f.padding:
            values[f.key] = value
    _cross_check(spec, bytes(octets[start:]), values)
    return rows, values


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, c.Container):
        return {k: _plain(v) for k, v in value.items() if not k.startswith("_")}
    return value


def _flatten(value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict):
                _flatten(v, out)
            else:
                out[k] = v


def _cross_check(spec: HeaderSpec, chunk: bytes, values: Mapping[str, int]) -> None:
    if spec.struct is None:
        return
    try:
        parsed = spec.struct.parse(chunk)
    except c.ConstructError as exc:
        raise SpecBuildError(f"{spec.key}: construct cannot parse the example: {exc}") from None
    flat: dict[str, Any] = {}
    _flatten(_plain(parsed), flat)
    for key, value in values.items():
        if key in flat and flat[key] is not None and _plain(flat[key]) != value:
            raise SpecBuildError(f"{spec.key}: {key} read as {value}, construct parses "
                                 f"{flat[key]!r}")
    if _bitstruct_inner(spec.struct) is not None:
        fast = BitHeader("specs", spec.struct).unpack_dict(chunk)
        for key, value in fast.items():
            if values.get(key) != value:
                raise SpecBuildError(f"{spec.key}: {key} read as {values.get(key)}, the fast "
                                     f"path unpacks {value}")


# ---------------------------------------------------------------------------------------------
# Hex dumps and worked examples
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """Octets ``start..end-1`` of an example belong to ``label``."""

    start: int
    end: int
    label: str


def hex_dump(octets: bytes, spans: Sequence[Span]) -> str:
    """One line per span (wrapped every 16 octets): offset, octets, what they are.

    The spans must tile the octets exactly (checked), so the dump shows every octet once.
    """
    pos = 0
    for s in spans:
        if s.start != pos or s.end <= s.start:
            raise SpecBuildError(f"spans do not tile the example at octet {pos}: {s}")
        pos = s.end
    if pos != len(octets):
        raise SpecBuildError(f"spans cover {pos} of {len(octets)} octets")
    lines = []
    for s in spans:
        for i, at in enumerate(range(s.start, s.end, HEX_PER_LINE)):
            chunk = octets[at:min(at + HEX_PER_LINE, s.end)]
            text = " ".join(f"{b:02x}" for b in chunk)
            label = s.label if i == 0 else ""
            lines.append(f"{at:04x}  {text:<{3 * HEX_PER_LINE - 1}}  {label}".rstrip())
    return "\n".join(lines)


def parse_hex_dump(text: str) -> bytes:
    """The octets of a :func:`hex_dump` (used by the tests on the committed Markdown)."""
    out = bytearray()
    for line in text.splitlines():
        if not line.strip():
            continue
        offset = int(line[:4], 16)
        if offset != len(out):
            raise ValueError(f"hex dump line at {offset:04x}, expected {len(out):04x}")
        out += bytes.fromhex(line[6:6 + 3 * HEX_PER_LINE - 1])
    return bytes(out)


@dataclass(frozen=True)
class Example:
    """A worked example: a real encoding built by linkstack, shown and decoded.

    ``code`` is Python source that builds the example and binds the octets to ``octets`` (it
    is executed by the generator and printed on the page, so the reader can run it);
    ``spans(octets)`` cuts the octets into annotated parts; ``decode(octets)`` returns the
    field-by-field rows using the layer's real decoder and the construct declarations — it is
    what the tests run on the hex printed in the committed Markdown.
    """

    key: str
    title: str
    intro: str
    code: str
    spans: Callable[[bytes], list[Span]]
    decode: Callable[[bytes], list[Row]]
    outro: str = ""
    note: str = ("Decoded field by field: values read from the bits at the offsets the "
                 "declaration gives (positions count from the start of each part), checked "
                 "against the construct parse and against linkstack's decoder.")

    def build(self) -> tuple[bytes, dict[str, Any]]:
        """Run :attr:`code`; returns ``(octets, namespace)``."""
        namespace: dict[str, Any] = {"__name__": f"linkstack.specgen.build.example.{self.key}"}
        try:
            exec(compile(self.code, f"<example {self.key}>", "exec"), namespace)
        except LinkstackError as exc:
            raise SpecBuildError(f"example {self.key}: {exc}") from exc
        octets = namespace.get("octets")
        if not isinstance(octets, bytes):
            raise SpecBuildError(f"example {self.key}: the code must bind bytes to 'octets'")
        return octets, namespace


ROW_HEADER = ("Part", "Field", "Position", "Raw", "Value")


def example_block(ex: Example, level: int = 3) -> str:
    """The Markdown of a worked example, between markers the tests look for."""
    octets, _ = ex.build()
    rows = ex.decode(octets)
    out = [f"{'#' * level} Worked example: {ex.title}", "", f"<!-- example: {ex.key} -->", "",
           ex.intro, "", "Built by linkstack with:", "", "```python", ex.code.strip(), "```", "",
           f"The {len(octets)} octets, annotated:", "", "```text",
           hex_dump(octets, ex.spans(octets)), "```", "",
           ex.note, "",
           md_table(ROW_HEADER, rows), "", "<!-- /example -->", ""]
    if ex.outro:
        out += [ex.outro, ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------

GENERATED_NOTE = ("<!-- Generated by `linkstack specs build` from the code "
                  "(linkstack/specgen/build.py and "
                  "linkstack/specgen/). Do not edit: a test regenerates it and fails on any "
                  "difference. -->")

Part = str | HeaderSpec | Example | Callable[[], str]


@dataclass(frozen=True)
class Page:
    """One Markdown file of ``specs/``: a title and its parts, rendered in order.

    A part is Markdown text, a :class:`HeaderSpec` (diagram + field table), an
    :class:`Example` (worked example) or a function returning Markdown.
    """

    filename: str
    title: str
    summary: str
    book: str
    parts: tuple[Part, ...]
    field_header: str = "Field (Blue Book name)"

    @property
    def headers(self) -> list[HeaderSpec]:
        return [p for p in self.parts if isinstance(p, HeaderSpec)]

    @property
    def examples(self) -> list[Example]:
        return [p for p in self.parts if isinstance(p, Example)]

    def render(self) -> str:
        out = [f"# {self.title}", "", GENERATED_NOTE, ""]
        for part in self.parts:
            if isinstance(part, str):
                out.append(part.strip("\n") + "\n")
            elif isinstance(part, HeaderSpec):
                out.append(header_block(part, self.book, name_header=self.field_header))
            elif isinstance(part, Example):
                out.append(example_block(part))
            else:
                out.append(part().strip("\n") + "\n")
        text = "\n".join(out)
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
        return text.rstrip("\n") + "\n"
