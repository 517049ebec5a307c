"""``linkstack specs build``: the framing specs in ``specs/``, generated from the code.

One Markdown page per layer (Space Packet, TC, TM, AOS, USLP, CLCW and COP-1, selective
repeat, CLTU/BCH, TM coding, SDLS, AI payload messages), a compliance table, a latency
explainer, the reference of scenario keys (:mod:`linkstack.specgen.scenario_keys`) and a README
with a reading order. Everything on the pages that can drift from the code is
derived from it:

- bit diagrams and field tables from the ``construct`` declarations (through
  :class:`~linkstack.bitfields.BitHeader` for ``BitStruct`` headers), with the field texts kept
  as dicts keyed by the construct field names and checked against the declarations;
- worked examples by running the code printed on the page and decoding the octets with the
  layer's decoder (a build fails if the two disagree);
- COP-1 state tables and diagrams from the engines' own tables;
- the compliance table's test names verified against the test files.

A test (``tests/test_specs.py``) regenerates the pages and fails if the committed ``specs/``
differs; ``linkstack specs build --check`` does the same from the command line.

Public API: :func:`build` (``{filename: Markdown}``), :func:`write`, :func:`check`,
:func:`latency_example` (the hook the end-to-end run fills in, see :class:`LatencyExample`),
:data:`PAGES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from linkstack.specgen.coding import CLTU_PAGE, TM_CODING_PAGE
from linkstack.specgen.compliance import compliance_page
from linkstack.specgen.cop import COP1_PAGE, SR_PAGE
from linkstack.specgen.frames import AOS_PAGE, SPP_PAGE, TC_PAGE, TM_PAGE, USLP_PAGE
from linkstack.specgen.payload import PAYLOAD_PAGE
from linkstack.specgen.render import GENERATED_NOTE, Page, SpecBuildError, md_table
from linkstack.specgen.scenario_keys import FILENAME as SCENARIO_KEYS
from linkstack.specgen.scenario_keys import scenario_keys_page
from linkstack.specgen.sdls import SDLS_PAGE

__all__ = [
    "GENERATED_NOTE",
    "LAYER_PAGES",
    "PAGES",
    "LatencyExample",
    "SpecBuildError",
    "build",
    "check",
    "default_root",
    "latency_example",
    "write",
]

LAYER_PAGES: tuple[Page, ...] = (
    SPP_PAGE, TC_PAGE, TM_PAGE, COP1_PAGE, CLTU_PAGE, TM_CODING_PAGE, AOS_PAGE, USLP_PAGE,
    SR_PAGE, SDLS_PAGE, PAYLOAD_PAGE,
)
"""The per-layer pages, in the reading order of the README."""

README = "README.md"
LATENCY = "latency.md"
COMPLIANCE = "compliance.md"


def default_root() -> Path:
    """The repository root: the directory holding ``pyproject.toml`` next to the package."""
    return Path(__file__).resolve().parent.parent.parent


# ---------------------------------------------------------------------------------------------
# Latency explainer
# ---------------------------------------------------------------------------------------------


INFERENCE = "inference"
UNACCOUNTED = "unaccounted"


@dataclass(frozen=True)
class LatencyExample:
    """One measured prompt round trip of the default scenario, for ``specs/latency.md``.

    Attributes:
        command: the shell command that reproduces the run (printed on the page).
        segments: ``(segment, {component: seconds})`` in the order the exchange crosses them
            (``RunReport.segments``: forward links, ``onboard``, return links). Components are
            those of :data:`linkstack.sims.breakdown.COMPONENTS` plus ``"inference"``; a
            missing one counts as 0. A segment named ``"unaccounted"`` is allowed (its one
            component is ``"unaccounted"``) and shown if it is not zero.
        total_s: measured end-to-end time; must equal the sum of all components (the page
            refuses a breakdown that does not add up).
        bound_s: the physics-only bound of the same exchange (``PromptReport.bound_s``).
        description: one sentence on what was sent (prompt, seed, moment of the pass).
        ttft_s: time to first token at the ground (``PromptReport.ttft_s``; equal to
            ``total_s`` when nothing was streamed).
        segments_streamed: partial results that reached the ground before the Result.
    """

    command: str
    segments: tuple[tuple[str, Mapping[str, float]], ...]
    total_s: float
    bound_s: float
    description: str = ""
    ttft_s: float | None = None
    segments_streamed: int = 0

    @classmethod
    def from_breakdown(cls, command: str, breakdown: Mapping[str, float],
                       segments: Sequence[str], total_s: float, bound_s: float,
                       description: str = "", ttft_s: float | None = None,
                       segments_streamed: int = 0) -> LatencyExample:
        """Build from a ``PromptReport.breakdown`` (keys ``"<segment>.<component>"``, plus
        ``"unaccounted"``) and ``RunReport.segments``."""
        grouped: dict[str, dict[str, float]] = {name: {} for name in segments}
        for key, value in breakdown.items():
            if key == UNACCOUNTED:
                grouped.setdefault(UNACCOUNTED, {})[UNACCOUNTED] = value
                continue
            segment, _, component = key.rpartition(".")
            if segment not in grouped:
                raise SpecBuildError(f"latency example: {key!r} names no segment of {segments}")
            grouped[segment][component] = value
        return cls(command, tuple((name, parts) for name, parts in grouped.items()), total_s,
                   bound_s, description, ttft_s, segments_streamed)


def latency_example() -> LatencyExample | None:
    """The measured breakdown shown on ``specs/latency.md``, or None.

    It is the first prompt of the default scenario, run by the simulator (virtual time, the
    scenario's seed) with the model's answer and measured inference time replayed from
    ``sims/scenarios/gemma-recorded.json`` (recorded once from the real Gemma 3 270M on this
    machine), so the page is deterministic and can be compared byte for byte.
    """
    from pathlib import Path

    from linkstack.payload.backend import RecordedBackend
    from linkstack.sims.roundtrip import run_roundtrip
    from linkstack.sims.scenario import load_scenario

    recording = Path(__file__).resolve().parents[2] / "sims" / "scenarios" / RECORDING
    scenario = load_scenario("default")
    prompt = scenario.run.prompts[0]
    backend = RecordedBackend.from_json(recording.read_text())
    report = run_roundtrip(scenario, backend, prompts=[prompt])
    (p,) = report.prompts
    return LatencyExample.from_breakdown(
        f"linkstack run --prompts 1 --backend recorded:sims/scenarios/{RECORDING}",
        p.breakdown, report.segments, p.total_s, p.bound_s,
        f"The prompt {prompt!r} sent at t = {scenario.run.start_s:g} s of the default "
        f"scenario (seed {scenario.seed}); answer {p.answer.strip()!r} "
        f"({p.completion_tokens} tokens, inference {p.inference_s:.3f} s on this machine).",
        p.ttft_s, p.segments,
    )


RECORDING = "gemma-recorded.json"


def _components() -> tuple[str, ...]:
    from linkstack.sims.breakdown import COMPONENTS

    return tuple(COMPONENTS)


_COMPONENT_TEXT: dict[str, str] = {
    "queueing": "time a frame carrying the message waited in the transmit queue behind other "
                "frames (other messages, idle frames, retransmissions of others)",
    "serialization": "time to clock the coded frame out at the link rate: "
                     "8 × (CLTU or CADU octets) / rate",
    "propagation": "light time from transmitter to receiver; on the RF links it follows the "
                   "slant range during the pass, on the ISL the chord between the satellites",
    "coding": "compute time of channel coding: BCH/CLTU or Reed-Solomon, randomizer and "
              "synchronization, on both ends of the hop",
    "sdls": "the share of coding and serialization spent on the SDLS Security Header and "
            "Trailer (overhead / frame length of each secured frame; 0 without SDLS, see "
            "`linkstack run secure` and [sdls.md](sdls.md))",
    "arq_wait": "everything else on the hop: transmissions that were lost, waiting for the "
                "retransmission timer (COP-1 T1, selective-repeat RTO), a full ARQ window — "
                "the price of reliability",
}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _rate(bps: float) -> str:
    for scale, unit in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if bps >= scale:
            return f"{bps / scale:g} {unit}"
    return f"{bps:g} bit/s"


def _static_floor() -> str:
    """Serialization and propagation per hop of the default scenario, from its files."""
    from linkstack.codecs.chain import CodingChain
    from linkstack.sims.scenario import load_scenario

    scenario = load_scenario("default")
    order = ("uplink", "isl-forward", "isl-return", "downlink")
    rows = []
    floor = 0.0
    for name in order:
        link = scenario.links[name]
        stack = link.stack
        if stack.coding is None or stack.frame_length is None:
            raise SpecBuildError(f"default scenario: link {name} has no coding/frame_length")
        chain = CodingChain.from_name(stack.coding)
        coded = (chain.cadu_length if chain.kind == "tm"
                 else stack.frame_length + chain.overhead(stack.frame_length))
        assert coded is not None
        ser = 8 * coded / link.rate_bps
        prop = link.build_propagation()
        if link.pass_geometry is not None:
            leo = link.pass_geometry.leo_pass()
            closest = prop.delay_ns(round(leo.midpoint_s(0) * 1e9)) / 1e9
            mask = prop.delay_ns(round(leo.windows(leo.repeat_s)[0][0] * 1e9)) / 1e9
            prop_text = f"{_ms(closest)} (closest) – {_ms(mask)} (at the mask)"
            prop_s = closest
        else:
            prop_s = prop.delay_ns(0) / 1e9
            prop_text = _ms(prop_s)
        floor += ser + prop_s
        rows.append((name, f"{link.source} → {link.destination}", _rate(link.rate_bps),
                     f"{stack.frame} {stack.frame_length}", f"`{chain.name}`", str(coded),
                     _ms(ser), prop_text, stack.arq or "none"))
    return "\n".join([
        "## The default scenario, hop by hop",
        "",
        "Figures computed from `sims/scenarios/default.toml` and its profiles (link rates, "
        "geometry) and from the coding chains (coded frame sizes); the frame length is the "
        "scenario's. Propagation on the RF links is given at the closest approach of the first "
        "pass and at the elevation mask.",
        "",
        md_table(("hop", "from → to", "rate", "frame", "coding", "coded octets",
                  "serialization of one frame (ms)", "propagation (ms)", "ARQ"), rows),
        "",
        f"A prompt and a result that each fill one frame of these lengths, on idle links that "
        f"lose nothing, at closest approach, coding compute and inference left out: "
        f"**{_ms(floor)} ms** (the serialization and propagation columns summed). That is the "
        "stack's floor; the bound above is lower because it counts only the message octets. "
        "The uplink's 64 kbit/s makes its serialization the largest term: a full 1024-octet "
        "TC frame takes longer to clock out than to cross the whole relay chain.",
    ])


def _measured() -> str:
    example = latency_example()
    if example is None:
        return ("## A measured breakdown\n\nNot available yet: "
                "`linkstack.specgen.build.latency_example()` "
                "returns None until the end-to-end run is wired to it. When it is, this "
                "section shows the breakdown of one prompt/result exchange of the default "
                "scenario and the command that reproduces it.")
    every = (*_components(), INFERENCE)
    # the sdls column only for a run with SDLS (the default scenario has none)
    columns = tuple(c for c in every if c != "sdls" or any(
        parts.get(c) for _, parts in example.segments))
    rows = []
    total = 0.0
    for segment, parts in example.segments:
        allowed = {UNACCOUNTED} if segment == UNACCOUNTED else set(every)
        unknown = set(parts) - allowed
        if unknown:
            raise SpecBuildError(f"latency example: unknown components {sorted(unknown)} in "
                                 f"segment {segment!r}")
        if segment == UNACCOUNTED:
            value = float(parts.get(UNACCOUNTED, 0.0))
            total += value
            if value:
                rows.append((UNACCOUNTED, *[""] * len(columns), _ms(value)))
            continue
        values = [float(parts.get(c, 0.0)) for c in columns]
        total += sum(float(parts.get(c, 0.0)) for c in every)
        rows.append((segment, *[_ms(v) if v else "" for v in values], _ms(sum(values))))
    rows.append(("**total**", *[""] * len(columns), f"**{_ms(example.total_s)}**"))
    if not math.isclose(total, example.total_s, rel_tol=1e-9, abs_tol=1e-12):
        raise SpecBuildError(f"latency example: components sum to {total} s, total says "
                             f"{example.total_s} s")
    out = ["## A measured breakdown", ""]
    if example.description:
        out += [example.description, ""]
    out += ["Reproduce it with:", "", "```sh", example.command, "```", "",
            md_table(("segment", *[f"{c} (ms)" for c in columns], "segment total (ms)"), rows),
            "",
            f"The bound of this exchange is {_ms(example.bound_s)} ms; the measured total is "
            f"{_ms(example.total_s)} ms, {example.total_s / example.bound_s:.2f} times the "
            "bound." if example.bound_s > 0 else "The run computed no bound."]
    if example.ttft_s is not None:
        if example.ttft_s > example.total_s + 1e-12 or example.ttft_s < 0:
            raise SpecBuildError(f"latency example: ttft {example.ttft_s} s is outside "
                                 f"0..total {example.total_s} s")
        out += ["", f"Time to first token: `ttft_s` = {_ms(example.ttft_s)} ms "
                f"({example.segments_streamed} partial result(s) reached the ground before the "
                f"Result; the first words were read {_ms(example.total_s - example.ttft_s)} ms "
                "before the last)."]
    return "\n".join(out)


_TTFT_TEXT = """## Time to first token (`ttft_s`)

The breakdown follows the **final** Result: `total_s` is from the prompt's creation at the
ground to the arrival of the whole answer. Users read the first words long before that when the
endpoint streams: with `[run] stream_tokens` (a segment every N generated tokens) or
`stream_interval_s` (every T seconds; the default scenario uses 8 tokens or 0.5 s) the onboard
endpoint cuts the answer into PartialResult messages (payload.md) as it is generated, the first
one as soon as any text is final, and sends them down the same path as the Result.

`ttft_s` is the time from the prompt's creation to the arrival at the ground of the first
partial result that carries text (the Result's arrival when nothing was streamed). It is
reported beside `total_s` (`linkstack run` prints both; `PromptReport.ttft_s`) and is not a row
of the breakdown: the rows still add up to `total_s`. For one answer

```text
ttft_s  ≈  forward links + onboard queueing + prompt evaluation + first token
           + return links for one small message
total_s =  forward links + onboard queueing + whole inference + return links for the Result
```

so `total_s − ttft_s` is about the decoding time of the rest of the answer (scaled by the
flight profile), plus any difference in the return trip of a short partial and the Result.
Partial results share the return links with the Result; a lost one is never waited for (the
Result carries the whole text and closes the stream)."""


def _latency_page() -> str:
    components = _components()
    missing = [c for c in components if c not in _COMPONENT_TEXT]
    extra = [c for c in _COMPONENT_TEXT if c not in components]
    if missing or extra:
        raise SpecBuildError(f"latency page out of date with linkstack.sims.breakdown "
                             f"(missing {missing}, unknown {extra})")
    rows = [(f"`{c}`", _COMPONENT_TEXT[c]) for c in components]
    rows.append(("`inference`", "onboard: running the model (the Result carries it, "
                 "`inference_time_us`, scaled by the flight-hardware profile); waiting for the "
                 "model is the `queueing` of the `onboard` segment"))
    parts = [
        "# Where the time goes: the latency breakdown",
        "",
        GENERATED_NOTE,
        "",
        "A prompt's round trip in the default scenario is a chain of *segments*, contiguous "
        "in time: the uplink (ground → relay, RF), the forward laser link (relay → sat1), "
        "`onboard` (waiting for the model, then inference), the return laser link and the "
        "downlink. On every link the simulator records, in virtual time, the intervals in "
        "which something happened to the message, and splits the segment's time among the "
        "components below. Each instant goes to exactly one component (when two overlap, the "
        "first of coding, serialization, propagation, queueing wins), so **the components add "
        "up to the measured time, by construction** (`linkstack.sims.breakdown."
        "split_intervals`; the end-to-end run is `linkstack.sims.roundtrip`).",
        "",
        "## What each row means",
        "",
        md_table(("component", "what it measures"), rows),
        "",
        "## How the bound is computed",
        "",
        "The *bound* is what physics alone needs for the same exchange: on every link the "
        "message crosses, the serialization of the message itself (the Prompt or Result "
        "octets, no protocol overhead at all) at the link rate plus the propagation delay at "
        "that moment of the pass, and the inference time once:",
        "",
        "```text",
        "bound = Σ_links ( 8 × message octets / rate_link  +  propagation_link )  +  inference",
        "```",
        "",
        "The measured total is never below it; the ratio total / bound is the price of the "
        "stack — headers, channel coding, whole frames sent for a short message, waiting in "
        "queues, recovering losses. The breakdown says which: serialization above the bound "
        "is framing and coding overhead; queueing is sharing the link; arq_wait is the cost of "
        "reliability. With losses, COP-1 bounds the extra time of a frame that is eventually "
        "delivered by (Transmission_Limit − 1) retransmission rounds, each at most T1 after the "
        "previous try; selective repeat by the sum of its backed-off RTOs.",
        "",
        _static_floor(),
        "",
        _TTFT_TEXT,
        "",
        _measured(),
    ]
    text = "\n".join(parts)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------------------------

_GLOSSARY = (
    ("APID", "Application Process Identifier: the address of a Space Packet (11 bits)."),
    ("VC, VCID", "Virtual Channel: one of several logical channels sharing a link; its "
                 "identifier is in every transfer frame header."),
    ("MC", "Master Channel: all the VCs of one spacecraft on one physical channel."),
    ("MAP", "Multiplexer Access Point: a sub-channel of a VC (TC, USLP)."),
    ("FHP", "First Header Pointer: where the first packet starts in a frame's data field."),
    ("OCF", "Operational Control Field: 4 octets at the end of a return frame; holds the CLCW."),
    ("CLCW", "Communications Link Control Word: FARM-1's report to FOP-1."),
    ("FECF", "Frame Error Control Field: the CRC at the end of a frame."),
    ("COP-1, FOP-1, FARM-1", "the TC uplink's ARQ: the procedure, its sending and receiving "
                             "ends."),
    ("N(S), V(S), V(R), N(R)", "sequence numbers: of a frame, next to send, next expected, "
                               "reported back."),
    ("CLTU", "Communications Link Transmission Unit: a TC frame in BCH codeblocks between a "
             "start and a tail sequence."),
    ("ASM, CADU", "Attached Sync Marker and Channel Access Data Unit: the marker and the "
                  "marker + coded frame of the TM coding."),
    ("RS(255,223)", "the CCSDS Reed-Solomon code: 223 data octets, 32 check octets per "
                    "codeword."),
)


def _readme() -> str:
    rows = []
    for i, page in enumerate(LAYER_PAGES, start=1):
        rows.append((str(i), f"[{page.title}]({page.filename})", page.summary))
    n = len(LAYER_PAGES)
    rows.append((str(n + 1), f"[Where the time goes]({LATENCY})",
                 "the latency breakdown: what each component means, how the bound is computed"))
    rows.append((str(n + 2), f"[Compliance]({COMPLIANCE})",
                 "which Blue Book feature is supported, partly or not, and the test that shows "
                 "it"))
    rows.append((str(n + 3), f"[Scenario keys]({SCENARIO_KEYS})",
                 "every key of a scenario file: type, default, allowed values, meaning"))
    parts = [
        "# linkstack framing specs",
        "",
        GENERATED_NOTE,
        "",
        "These pages explain, layer by layer, the octets linkstack puts on the wire: what each "
        "header is for, where it sits in the stack, every field with its Blue Book name, and "
        "real frames built by linkstack, decoded field by field. They are generated from the "
        "code, so they say what the code does.",
        "",
        "## Reading order",
        "",
        "For a first reading, follow a prompt down the stack and back: the packet that "
        "carries it, the uplink frame and its ARQ, the coding that gets it through the noise; "
        "then the frames of the high-rate links and the payload itself.",
        "",
        md_table(("#", "Page", "What you learn"), rows),
        "",
        "```text",
        "  ground client            Prompt  ->  Space Packet (APID 0x100)",
        "  uplink (S-band)          TC frame + COP-1  ->  CLTU (BCH)",
        "  relay <-> sat1 (laser)   USLP frame + selective repeat  ->  CADU (RS, ASM)",
        "  downlink (X-band)        TM frame + CLCW in the OCF  ->  CADU (RS, ASM)",
        "  sat1                     onboard model answers with a Result",
        "```",
        "",
        "## How to read a page",
        "",
        "- **Bit diagrams** are drawn RFC style, 32 bits per row. Bit 0 is the first bit "
        "transmitted and the most significant bit of the first octet, as in every CCSDS Blue "
        "Book; multi-bit fields are big-endian. A field too narrow for its name carries an "
        "abbreviation or a letter, explained under the diagram; rows between slashes are "
        "variable-length fields.",
        "- **Field tables** give each field's position, width, Blue Book name, the name the "
        "code uses, its meaning, allowed values and Blue Book section. The table and the "
        "diagram are drawn from the `construct` declaration the code itself uses.",
        "- **Worked examples** show the Python that built the octets (run it to get them), "
        "the octets annotated part by part, and each field decoded: value read from the bits, "
        "checked against the construct parse and the layer's decoder.",
        "",
        "## Glossary",
        "",
        md_table(("Term", "Meaning"), _GLOSSARY),
        "",
        "## How these pages are made",
        "",
        "`linkstack specs build` writes them (`--out DIR` elsewhere, `--check` to compare "
        "without writing: it exits non-zero and lists the files that differ). "
        "`tests/test_specs.py` regenerates them and fails if the committed files differ, checks "
        "that every field table lists every field of its declaration, and decodes the worked "
        "examples' octets again to compare with the values shown. The texts (meanings, allowed "
        "values, sections) live in `linkstack/specgen/`, as dicts keyed by the construct "
        "field names. Section numbers refer to the Blue Book issue named on each page; the "
        "field-level ones were compiled from the code's docstrings and public implementations "
        "without the Blue Book text at hand (see [sources.md](sources.md)), so check them "
        "against the issue before citing them.",
        "",
        "Two pages here are written by hand, not generated: [architecture.md](architecture.md) "
        "(what linkstack is, the repository layout, the design principles the code cites as "
        "\"principle N\", the data flow of a prompt) and [sources.md](sources.md) (the CCSDS "
        "layouts, constants and test vectors the code relies on, each with its source, and the "
        "bugs found in other implementations; the code cites it by section, \"§1.x\").",
    ]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# Build, write, check
# ---------------------------------------------------------------------------------------------

PAGES: tuple[str, ...] = (README, *(p.filename for p in LAYER_PAGES), LATENCY, COMPLIANCE,
                          SCENARIO_KEYS)
"""Every file ``build`` produces, in README order."""


def build(root: Path | None = None) -> dict[str, str]:
    """Generate every page: ``{filename: Markdown}``.

    ``root`` is the repository root whose ``tests/`` the compliance table's node ids are
    checked against (default: :func:`default_root`). Raises :class:`SpecBuildError` when the
    code and the specs' data disagree (a doc dict out of date, a worked example that does not
    decode back, a test that does not exist).
    """
    root = default_root() if root is None else Path(root)
    if not (root / "tests").is_dir():
        raise SpecBuildError(f"no tests/ directory under {root}: the compliance table's test "
                             "names cannot be checked")
    out: dict[str, str] = {README: _readme()}
    for page in LAYER_PAGES:
        out[page.filename] = page.render()
    out[LATENCY] = _latency_page()
    compliance = "\n".join([
        "# Compliance with the CCSDS Blue Books", "", GENERATED_NOTE, "",
        compliance_page(root),
    ])
    out[COMPLIANCE] = compliance.rstrip("\n") + "\n"
    out[SCENARIO_KEYS] = scenario_keys_page()
    if tuple(out) != PAGES:
        raise SpecBuildError("page list out of date")
    return out


def _stale(out_dir: Path, pages: Mapping[str, str]) -> list[str]:
    """Generated files in ``out_dir`` (they carry the note) that are no longer generated."""
    stale = []
    if out_dir.is_dir():
        for path in sorted(out_dir.glob("*.md")):
            if path.name not in pages and GENERATED_NOTE in path.read_text(encoding="utf-8"):
                stale.append(path.name)
    return stale


def write(out_dir: Path, root: Path | None = None) -> list[str]:
    """Write every page into ``out_dir``; returns the names of the files that changed.

    Generated files that are no longer produced are not deleted: :func:`check` reports them.
    """
    pages = build(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in pages.items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    return changed


def check(out_dir: Path, root: Path | None = None) -> list[str]:
    """Compare ``out_dir`` with a fresh build; returns the differing files (empty = up to date).

    Each entry is ``name`` followed by why: ``(missing)``, ``(differs)`` or ``(stale: no
    longer generated)``.
    """
    pages = build(root)
    problems = []
    for name, text in pages.items():
        path = out_dir / name
        if not path.is_file():
            problems.append(f"{name} (missing)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name} (differs)")
    problems += [f"{name} (stale: no longer generated)" for name in _stale(out_dir, pages)]
    return problems
