"""The generated specs (``linkstack specs build``): up to date, complete, examples that decode.

The committed ``specs/`` must equal a fresh build; every header table must list every field of
its construct declaration; every worked example's octets, read back from the committed
Markdown, must decode to the values shown; every test the compliance table names must exist.
Independent oracles where there are some: the spacepackets library and the published vectors
of specs/sources.md §1.15 for the Space Packet, TM and USLP examples.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import construct as c
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkstack.arq import farm1, fop1
from linkstack.bitfields import BitHeader
from linkstack.cli.specs import register
from linkstack.specgen import build as specs
from linkstack.specgen.compliance import BOOKS, Book, Feature, Support, check_books, missing_tests
from linkstack.specgen.render import (
    SPARE,
    FieldDoc,
    HeaderSpec,
    Page,
    Span,
    SpecBuildError,
    bit_diagram,
    doc_keys,
    hex_dump,
    parse_hex_dump,
    struct_fields,
)

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    return specs.build(ROOT)


def _committed(name: str) -> str:
    return (SPECS / name).read_text(encoding="utf-8")


# -- Markdown parsing (independent of the generator's renderer) -------------------------------


def _cells(line: str) -> list[str]:
    """Cells of one Markdown table row, with the escapes of the renderer undone."""
    cells, cur, i = [], "", 0
    body = line.strip()
    assert body.startswith("|") and body.endswith("|"), line
    body = body[1:-1]
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in "\\|":
            cur += body[i + 1]
            i += 2
            continue
        if ch == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    cells.append(cur.strip())
    return cells


def _table_after(text: str, marker: str) -> list[list[str]]:
    """The rows (header and separator dropped) of the first table after ``marker``."""
    start = text.index(marker)
    lines = text[start:].splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[i:]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return rows[2:]


def _block_after(text: str, marker: str, fence: str = "```text") -> str:
    start = text.index(marker)
    a = text.index(fence + "\n", start) + len(fence) + 1
    b = text.index("\n```", a)
    return text[a:b]


def _num(value: str) -> int:
    """The number a Value cell starts with (``42 (0x02A)``, ``3 = unsegmented``, ``1``)."""
    return int(value.split(" ")[0])


def _all_pages() -> list[Page]:
    return list(specs.LAYER_PAGES)


# -- up to date ----------------------------------------------------------------------------------


def test_committed_specs_equal_a_fresh_build(built: dict[str, str], tmp_path: Path) -> None:
    specs.write(tmp_path, ROOT)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(specs.PAGES)
    stale = []
    for name in specs.PAGES:
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        assert fresh == built[name]
        if not (SPECS / name).is_file() or _committed(name) != fresh:
            stale.append(name)
    assert not stale, f"specs/ is out of date, run `linkstack specs build`: {stale}"
    assert specs.check(SPECS, ROOT) == []


def test_build_is_deterministic_across_hash_seeds(built: dict[str, str], tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from linkstack.specgen import build as specs; "
            "specs.write(Path(sys.argv[1]), Path(sys.argv[2]))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(tmp_path), str(ROOT)], check=True, env=env,
                   timeout=120)
    for name in specs.PAGES:
        assert (tmp_path / name).read_text(encoding="utf-8") == built[name], name


def test_every_page_carries_the_generated_note(built: dict[str, str]) -> None:
    for name, text in built.items():
        assert specs.GENERATED_NOTE in text, name
        assert text.endswith("\n") and not text.endswith("\n\n"), name
        assert "\n\n\n" not in text, name


# -- header tables -------------------------------------------------------------------------------


def test_every_header_table_lists_every_field_of_its_declaration() -> None:
    seen = 0
    for page in _all_pages():
        text = _committed(page.filename)
        for spec in page.headers:
            rows = _table_after(text, f"<!-- header: {spec.key} -->")
            fields = spec.fields()
            assert [r[3] for r in rows] == [
                "—" if f.padding else f"`{f.key}`" for f in fields], spec.key
            assert [r[1] for r in rows] == [
                str(f.width) if f.width is not None else "variable" for f in fields], spec.key
            seen += 1
    assert seen >= 20


def test_walker_agrees_with_bitheader_on_every_bitstruct() -> None:
    for page in _all_pages():
        for spec in page.headers:
            if spec.struct is None or not isinstance(spec.struct, c.Transformed):
                continue
            header = BitHeader("test", spec.struct)
            fields = struct_fields(spec.struct)
            assert [(f.key, f.width, f.offset, f.const) for f in fields] == [
                (b.name or SPARE, b.width, b.offset_bits, b.const) for b in header.fields]


def test_field_docs_cover_exactly_the_declaration() -> None:
    for page in _all_pages():
        for spec in page.headers:
            assert set(spec.docs) == set(doc_keys(spec.fields())), spec.key


def _reachable(con: object, seen: set[int]) -> None:
    if id(con) in seen:
        return
    seen.add(id(con))
    for attr in ("subcon", "thensubcon", "elsesubcon"):
        if hasattr(con, attr):
            _reachable(getattr(con, attr), seen)
    for sub in getattr(con, "subcons", ()):
        _reachable(sub, seen)


def test_every_declared_header_of_the_stack_has_a_page() -> None:
    """A header declared in the packet, frame, ARQ or payload modules must be documented on a
    page (or be part of one that is, or wrap documented headers with plain data)."""
    import importlib
    import pkgutil

    documented: set[int] = set()
    for page in _all_pages():
        for spec in page.headers:
            if spec.struct is not None:
                _reachable(spec.struct, documented)
    undocumented = []
    for pkg in ("linkstack.spp", "linkstack.frames", "linkstack.arq", "linkstack.payload"):
        package = importlib.import_module(pkg)
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{pkg}.{info.name}")
            for name, value in vars(module).items():
                if name.startswith("_") or not isinstance(value, c.Transformed | c.Struct):
                    continue
                if id(value) in documented:
                    continue
                parts = [s.subcon if isinstance(s, c.Renamed) else s
                         for s in getattr(value, "subcons", [])]
                if parts and all(id(p) in documented or isinstance(p, c.Bytes) for p in parts):
                    continue  # a whole frame: documented header + plain data
                undocumented.append(f"{module.__name__}.{name}")
    assert undocumented == []


def test_doc_dict_out_of_date_stops_the_build() -> None:
    struct = c.BitStruct("a" / c.BitsInteger(4), "b" / c.BitsInteger(4))
    doc = FieldDoc("A", "m", "v", "§1")
    with pytest.raises(SpecBuildError, match="missing"):
        HeaderSpec("t.x", "X", {"a": doc}, "here", struct).check_docs()
    with pytest.raises(SpecBuildError, match="not in the declaration"):
        HeaderSpec("t.x", "X", {"a": doc, "b": doc, "c": doc}, "here", struct).check_docs()


def test_bit_diagram_of_a_small_declaration() -> None:
    # Drawn by hand: titles when they fit (2 chars a bit, minus one), else the abbreviation.
    struct = c.BitStruct("version" / c.Const(5, c.BitsInteger(4)), "flag" / c.Flag,
                         c.Padding(3), "count" / c.BitsInteger(12), "x" / c.BitsInteger(4))
    docs = {"version": FieldDoc("Version", "", "", "", "Ver"),
            "flag": FieldDoc("Some Flag", "", "", "", "F"),
            SPARE: FieldDoc("Spare", "", "", ""),
            "count": FieldDoc("Counter", "", "", ""),
            "x": FieldDoc("Extra", "", "", "", "X")}
    diagram, legend = bit_diagram(struct_fields(struct), docs)
    assert diagram == "\n".join([
        " 0                   1                   2",
        " 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3",
        "+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+",
        "|Version|F|Spare|        Counter        | Extra |",
        "+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+",
    ])
    assert legend == ["`F` Some Flag"]


def test_bit_diagram_splits_rows_and_draws_variable_fields() -> None:
    struct = c.Struct("h" / c.BitStruct("a" / c.BitsInteger(24), "b" / c.BitsInteger(16)),
                      "name" / c.PascalString(c.Int8ub, "utf8"), "z" / c.Int8ub)
    fields = struct_fields(struct)
    assert [(f.key, f.width, f.offset) for f in fields] == [
        ("a", 24, 0), ("b", 16, 24), ("name", None, 40), ("z", 8, None)]
    docs = {k: FieldDoc(k.upper(), "", "", "") for k in ("a", "b", "name", "z")}
    diagram, _ = bit_diagram(fields, docs)
    lines = diagram.splitlines()
    assert lines[3] == "|" + "A".center(47) + "|" + "B".center(15) + "|"
    assert lines[5] == "|" + "B (cont.)".center(15) + "|"
    assert lines[7] == "/" + "NAME (variable length)".center(63) + "/"
    assert lines[9] == "|" + "Z".center(15) + "|"


# -- worked examples -----------------------------------------------------------------------------


def _examples() -> list[tuple[str, object]]:
    return [(page.filename, ex) for page in _all_pages() for ex in page.examples]


def _example_octets_and_rows(filename: str, key: str) -> tuple[bytes, list[list[str]]]:
    text = _committed(filename)
    marker = f"<!-- example: {key} -->"
    end = text.index("<!-- /example -->", text.index(marker))
    block = text[text.index(marker):end]
    return parse_hex_dump(_block_after(block, marker)), _table_after(block, "| Part |")


@pytest.mark.parametrize(("filename", "example"), _examples(),
                         ids=[ex.key for _, ex in _examples()])  # type: ignore[attr-defined]
def test_worked_example_decodes_back_to_the_values_shown(filename: str, example: object) -> None:
    octets, rows = _example_octets_and_rows(filename, example.key)  # type: ignore[attr-defined]
    built_octets, _ = example.build()  # type: ignore[attr-defined]
    assert octets == built_octets
    decoded = [list(r) for r in example.decode(octets)]  # type: ignore[attr-defined]
    assert decoded == rows
    # Every bit-level row's raw bits are the value shown.
    for part, name, where, raw, value in rows:
        if where.startswith("bit") and set(raw) <= {"0", "1"} and raw:
            assert value.split(" ")[0] == str(int(raw, 2)), (part, name)


def test_examples_match_published_vectors_and_spacepackets() -> None:
    from spacepackets.ccsds.spacepacket import SpacePacketHeader
    from spacepackets.uslp.frame import FrameType, TransferFrame, VarFrameProperties

    octets, rows = _example_octets_and_rows("space-packet.md", "spp.tc_packet")
    # specs/sources.md §1.15: spacepackets encodes this packet as 1042c005000301020304.
    assert octets.hex() == "1042c005000301020304"
    hdr = SpacePacketHeader.unpack(octets)
    shown = {r[1]: r[4] for r in rows}
    assert _num(shown["Application Process Identifier"]) == hdr.apid
    assert _num(shown["Packet Sequence Count or Packet Name"]) == hdr.seq_count
    assert _num(shown["Packet Data Length"]) == hdr.data_len

    octets, rows = _example_octets_and_rows("uslp.md", "uslp.variable_frame")
    # specs/sources.md §1.15: the USLP vector c123406200140107e0 + packet + b44f.
    assert octets.hex() == "c123406200140107e0" + "1042c005000301020304" + "b44f"
    frame = TransferFrame.unpack(octets, FrameType.VARIABLE,
                                 VarFrameProperties(False, True, 0, 0))
    shown = {r[1]: r[4] for r in rows}
    assert _num(shown["Spacecraft Identifier"]) == frame.header.scid
    assert _num(shown["Virtual Channel Identifier"]) == frame.header.vcid
    assert _num(shown["MAP Identifier"]) == frame.header.map_id
    assert _num(shown["Frame Length"]) == frame.header.frame_len


def test_tm_example_decodes_with_spacepackets() -> None:
    from spacepackets.ccsds.spacepacket import SpacePacketHeader
    from spacepackets.ccsds.tm_frame import TmTransferFrame

    octets, rows = _example_octets_and_rows("tm.md", "tm.frame_with_packet_and_clcw")
    frame = TmTransferFrame.unpack(octets, 32, True)  # checks the FECF with fastcrc
    ph = frame.primary_header
    shown = {r[1]: r[4] for r in rows}
    assert _num(shown["Spacecraft Identifier"]) == ph.master_channel_id.spacecraft_id
    assert _num(shown["Virtual Channel Frame Count"]) == ph.vc_frame_count
    assert _num(shown["First Header Pointer"]) == ph.frame_datafield_status.first_header_pointer
    assert frame.op_ctrl_field == octets[26:30]
    packet = SpacePacketHeader.unpack(frame.data_field)
    assert shown[f"Space Packet, APID {packet.apid:#05x}"].startswith(
        f"{packet.packet_len} octets")


# -- COP-1 tables and diagrams ---------------------------------------------------------------------


@pytest.mark.parametrize(("heading", "table", "states", "events"), [
    ("## FOP-1", fop1.FOP1_STATE_TABLE, fop1.FopState, fop1.FopEvent),
    ("## FARM-1", farm1.FARM1_STATE_TABLE, farm1.FarmState, farm1.FarmEvent),
])
def test_state_diagram_arrows_are_the_engine_transitions(heading: str, table: dict, states: type,
                                                          events: type) -> None:
    text = _committed("clcw-cop1.md")
    section = text[text.index(heading):]
    diagram = _block_after(section, "### State diagram", "```mermaid")
    arrows = {}
    for line in diagram.splitlines():
        m = re.fullmatch(r"\s+(S\d) --> (S\d): (.+)", line)
        if m:
            arrows[(m.group(1), m.group(2))] = m.group(3).split(", ")
    expected: dict[tuple[str, str], list[str]] = {}
    for s in states:
        for e in events:
            t = table[(e, s)]
            if t.next_state != s and getattr(t, "applicable", True):
                expected.setdefault((s.name, t.next_state.name), []).append(e.name)
    assert arrows == expected


def test_state_table_rows_are_rendered_for_every_event() -> None:
    text = _committed("clcw-cop1.md")
    fop_rows = _table_after(text, "### State table (232.1-B-2 table 5-1")
    assert [r[0] for r in fop_rows] == [e.name for e in fop1.FopEvent]
    for row, (event, cond, cells) in zip(fop_rows, fop1.state_table_rows(), strict=True):
        assert row[1] == cond
        assert row[2:] == [cell.replace(" -> ", " → ") for cell in cells], event
    farm_rows = _table_after(text, "### State table (232.1-B-2 table 6-1")
    assert [r[0] for r in farm_rows] == [e.name for e in farm1.FarmEvent]


# -- compliance ------------------------------------------------------------------------------------


def test_every_test_named_in_the_compliance_table_exists() -> None:
    text = _committed("compliance.md")
    ids = re.findall(r"`(tests/test_\w+\.py::[\w\[\]-]+)`", text)
    assert len(ids) > 150
    assert missing_tests(ids, ROOT) == []
    assert sorted(set(ids)) == sorted({t for b in BOOKS for f in b.features for t in f.tests})


def test_compliance_verifier_rejects_missing_tests_and_bad_statuses() -> None:
    assert missing_tests(["tests/test_specs.py::test_no_such_test",
                          "tests/test_no_such_file.py::test_x",
                          "tests/test_specs.py::test_bit_diagram_of_a_small_declaration[p]"],
                         ROOT) == ["tests/test_specs.py::test_no_such_test",
                                   "tests/test_no_such_file.py::test_x"]
    bad = Book("X", "x", "x.md", (Feature("X-1", "f", "§1", Support.SUPPORTED,
                                          ("tests/test_specs.py::test_gone",)),))
    with pytest.raises(SpecBuildError, match="test_gone"):
        check_books([bad], ROOT)
    untested = Book("X", "x", "x.md", (Feature("X-1", "f", "§1", Support.PARTIAL),))
    with pytest.raises(SpecBuildError, match="names no test"):
        check_books([untested], ROOT)
    claimed = Book("X", "x", "x.md", (Feature(
        "X-1", "f", "§1", Support.NOT_SUPPORTED,
        ("tests/test_specs.py::test_bit_diagram_of_a_small_declaration",)),))
    with pytest.raises(SpecBuildError, match="not supported but names tests"):
        check_books([claimed], ROOT)


def test_build_refuses_a_root_without_tests(tmp_path: Path) -> None:
    with pytest.raises(SpecBuildError, match="tests/"):
        specs.build(tmp_path)


# -- latency page ----------------------------------------------------------------------------------


def test_latency_page_explains_every_breakdown_component(built: dict[str, str]) -> None:
    from linkstack.sims.breakdown import COMPONENTS

    rows = _table_after(built["latency.md"], "## What each row means")
    assert [r[0] for r in rows] == [f"`{c}`" for c in COMPONENTS] + ["`inference`"]


def test_latency_example_is_rendered_and_must_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # The shape of sims.roundtrip's PromptReport.breakdown and RunReport.segments.
    breakdown = {"uplink.queueing": 0.001, "uplink.serialization": 0.14825,
                 "uplink.propagation": 0.003045, "onboard.queueing": 0.0015,
                 "onboard.inference": 0.412, "downlink.serialization": 3.2e-05,
                 "downlink.propagation": 0.003045, "downlink.arq_wait": 0.1,
                 "unaccounted": 0.0}
    segments = ["uplink", "onboard", "downlink"]
    total = sum(breakdown.values())
    example = specs.LatencyExample.from_breakdown(
        "linkstack run --scenario default --seed 1", breakdown, segments, total, 0.25,
        "One short prompt.")
    monkeypatch.setattr(specs, "latency_example", lambda: example)
    page = specs.build(ROOT)["latency.md"]
    rows = _table_after(page, "Reproduce it with:")
    assert [r[0] for r in rows] == ["uplink", "onboard", "downlink", "**total**"]
    assert rows[0][-1] == "152.295"
    assert rows[1][1] == "1.500" and rows[1][6] == "412.000" and rows[1][-1] == "413.500"
    assert rows[2][5] == "100.000" and rows[2][-1] == "103.077"
    assert rows[-1][-1] == "**668.872**"
    assert "linkstack run --scenario default --seed 1" in page
    assert "2.68 times the bound" in page
    wrong = specs.LatencyExample.from_breakdown("x", breakdown, segments, total + 0.5, 0.25)
    monkeypatch.setattr(specs, "latency_example", lambda: wrong)
    with pytest.raises(SpecBuildError, match="sum to"):
        specs.build(ROOT)
    with pytest.raises(SpecBuildError, match="names no segment"):
        specs.LatencyExample.from_breakdown("x", {"isl.coding": 1.0}, segments, 1.0, 1.0)


# -- CLI -------------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps `specs` a sub-command group
        pass

    return app


def test_cli_build_then_check(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app()
    out = tmp_path / "specs"
    result = runner.invoke(app, ["specs", "build", "--check", "--out", str(out),
                                 "--root", str(ROOT)])
    assert result.exit_code == 1
    assert "README.md (missing)" in result.output
    result = runner.invoke(app, ["specs", "build", "--out", str(out), "--root", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert f"wrote {len(specs.PAGES)} of {len(specs.PAGES)}" in result.output
    assert (out / "tc.md").read_text(encoding="utf-8") == _committed("tc.md")
    result = runner.invoke(app, ["specs", "build", "--check", "--out", str(out),
                                 "--root", str(ROOT)])
    assert result.exit_code == 0, result.output
    (out / "tc.md").write_text("edited by hand\n", encoding="utf-8")
    (out / "old.md").write_text(specs.GENERATED_NOTE + "\n", encoding="utf-8")
    (out / "notes.md").write_text("hand-written notes are left alone\n", encoding="utf-8")
    result = runner.invoke(app, ["specs", "build", "--check", "--out", str(out),
                                 "--root", str(ROOT)])
    assert result.exit_code == 1
    assert "tc.md (differs)" in result.output
    assert "old.md (stale: no longer generated)" in result.output
    assert "notes.md" not in result.output
    result = runner.invoke(app, ["specs", "build", "--out", str(tmp_path / "x"),
                                 "--root", str(tmp_path)])
    assert result.exit_code == 2 and "error:" in result.output


# -- hex dumps ---------------------------------------------------------------------------------


@settings(max_examples=50)
@given(data=st.binary(min_size=1, max_size=200), cuts=st.lists(st.integers(1, 199), max_size=8))
def test_hex_dump_round_trip(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    spans = [Span(a, b, f"part {i}") for i, (a, b) in enumerate(itertools.pairwise(bounds))]
    text = hex_dump(data, spans)
    assert parse_hex_dump(text) == data
    assert len(text.splitlines()) == sum(-(-(s.end - s.start) // 16) for s in spans)


def test_hex_dump_spans_must_tile_the_octets() -> None:
    with pytest.raises(SpecBuildError):
        hex_dump(b"abcd", [Span(0, 2, "a")])
    with pytest.raises(SpecBuildError):
        hex_dump(b"abcd", [Span(0, 2, "a"), Span(3, 4, "b")])
