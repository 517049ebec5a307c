"""``specs/scenario-keys.md``: every key of a scenario file, from the parsers' own key table.

The page is rendered from :mod:`linkstack.sims.keys`, the declarations the scenario parsers
read each key through (type, default, bounds, allowed values), so it cannot drift from what a
scenario file may hold: a key the parsers read must be declared there, and
``tests/test_sims_scenario.py`` checks that every declared key is read.
"""

from __future__ import annotations

import math
from typing import Any

from linkstack.sims.keys import CHAIN_TABLES, CONSTELLATION_TABLES, REQUIRED, Key, TableSpec
from linkstack.specgen.render import GENERATED_NOTE, md_table

__all__ = ["FILENAME", "scenario_keys_page"]

FILENAME = "scenario-keys.md"
TITLE = "Scenario keys"

_KIND = {
    "number": "number",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
    "pairs": "array of [a, b]",
    "strings": "array of strings",
    "table": "table",
    "value": "see meaning",
}


def _number(value: float) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or (
        isinstance(value, float) and value.is_integer() and abs(value) < 1e7
    ):
        return str(int(value))
    return f"{value:g}"


def _default(key: Key) -> str:
    if key.kind == "table" and key.shown_default is None:
        return "—"
    if key.default is REQUIRED:
        return "**required**"
    if key.shown_default is not None:
        return key.shown_default
    value: Any = key.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"`{_number(value)}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, list | tuple) and not value:
        return "`[]`"
    return f"`{value!r}`"


_UNBOUNDED = 2**53
"""An integer bound this large (the 63-bit seed) is shown as no bound."""


def _allowed(key: Key) -> str:
    if key.choices:
        return ", ".join(f"`{c}`" for c in key.choices)
    parts = []
    hi = key.hi if key.hi is not None and key.hi < _UNBOUNDED else None
    key = Key(
        key.name,
        key.kind,
        key.help,
        key.default,
        key.lo,
        hi,
        key.lo_open,
        key.hi_open,
        key.choices,
        key.name_like,
    )
    if key.lo is not None and key.hi is not None:
        left = "(" if key.lo_open else "["
        right = ")" if key.hi_open else "]"
        return f"{left}{_number(key.lo)}, {_number(key.hi)}{right}"
    if key.lo is not None:
        parts.append(f"{'>' if key.lo_open else '≥'} {_number(key.lo)}")
    if key.hi is not None:
        parts.append(f"{'<' if key.hi_open else '≤'} {_number(key.hi)}")
    if key.name_like:
        parts.append("a name (letters, digits, `-`, `_`)")
    return ", ".join(parts)


def _section(table: TableSpec) -> str:
    rows = []
    for key in table.keys:
        meaning = key.help
        if key.when:
            meaning = f"({key.when}) {meaning}"
        if key.kind == "table" and key.table:
            anchor = key.table.replace(".", "").replace("<", "").replace(">", "")
            meaning += f" See [`[{key.table}]`](#{anchor})."
        rows.append((f"`{key.name}`", _KIND[key.kind], _default(key), _allowed(key), meaning))
    return "\n".join(
        [
            f"### `[{table.path}]`",
            "",
            table.help,
            "",
            md_table(("key", "type", "default", "allowed", "meaning"), rows),
        ]
    )


def scenario_keys_page() -> str:
    """The Markdown of ``specs/scenario-keys.md``."""
    for table in (*CHAIN_TABLES, *CONSTELLATION_TABLES):
        for key in table.keys:
            if isinstance(key.default, float) and not math.isfinite(key.default):
                raise ValueError(f"{table.path}.{key.name}: default must be finite")
    parts = [
        f"# {TITLE}",
        "",
        GENERATED_NOTE,
        "",
        "Every key a scenario file (TOML, `sims/scenarios/`) may hold, with its type, default "
        "and allowed values. The scenario parsers read each key through this same table "
        "(`linkstack/sims/keys.py`), so it is what they accept; any other key is an error "
        "naming it. Any key can also be set from the command line with "
        "`--set KEY=VALUE` (`--set links.uplink.ber=1e-5`); `sweep --vary` and "
        "`tune --set` also take `ber`, which sets the BER of every link. `<link>`, `<node>` "
        "and `<station>` stand for names the scenario chooses.",
        "",
        "## Chain scenarios",
        "",
        "A ground station, relays and a compute satellite joined by link directions "
        "(`default`, `anchor`, `secure`). Required tables: `[scenario]`, `[nodes.*]`, "
        "`[links.*]`.",
        "",
    ]
    for table in CHAIN_TABLES:
        parts += [_section(table), ""]
    parts += [
        "## Constellation scenarios",
        "",
        "A scenario with a `[constellation]` table (`star-compute`, `walker-2800`): "
        "`[scenario]` and `[profiles.*]` as above, and these tables. Required: "
        "`[constellation]`, `[ground_stations.*]` and the three link templates.",
        "",
    ]
    for table in CONSTELLATION_TABLES:
        parts += [_section(table), ""]
    return "\n".join(parts).rstrip("\n") + "\n"
