"""Parameter sweeps of the end-to-end round trip: a grid of scenario overrides, CSV and plots.

A sweep takes a scenario and one or more *varied keys*, each with a list of values
(``--vary KEY=V1,V2,...``), runs the round trip (:func:`linkstack.sims.roundtrip.run_roundtrip`)
at every point of the grid (the Cartesian product), ``repeat`` times with the seeds
``seed, seed + 1, ...`` (the same seeds at every point: common random numbers, so two points
differ only by their settings and by the error draws those settings cause), and summarises the
latency of every prompt: median and 95th percentile of the total, the physical bound and their
ratio.

Keys are the dotted scenario keys of ``--set`` (:func:`linkstack.sims.scenario.apply_overrides`),
with three conveniences:

* ``*`` matches any table name at its level: ``links.*.ber`` is the BER of every link;
* ``ber`` and ``erasure`` alone mean ``links.*.ber`` / ``links.*.erasure``;
* ``KEY1+KEY2`` sets several keys to the same value (e.g. both directions of an ISL).

Values are TOML literals (``1e-5``, ``true``, ``"tm-rs-255-239-i1"``; a bare word is a string);
commas inside brackets or quotes do not split.

Every prompt answered at a point counts in its statistics; a prompt that timed out counts with
its total (the ``[run] timeout_s``), so a setting that loses prompts is never mistaken for a
fast one. The model backend should be a :class:`~linkstack.sims.memo.MemoBackend`, so that every
point sees identical inference and the comparison is the protocol's alone.
"""

from __future__ import annotations

import copy
import csv
import fnmatch
import itertools
import math
import statistics
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from linkstack.errors import ConfigError
from linkstack.payload.backend import ModelBackend
from linkstack.sims.memo import MemoBackend
from linkstack.sims.roundtrip import percentile, run_roundtrip
from linkstack.sims.scenario import (
    Scenario,
    apply_overrides,
    parse_scenario,
    read_scenario_source,
)

__all__ = [
    "ALIASES",
    "Evaluation",
    "Sample",
    "Stats",
    "SweepPoint",
    "SweepResult",
    "Vary",
    "evaluate",
    "expand_key",
    "grid",
    "parse_literal",
    "parse_vary",
    "plot_sweep",
    "prepare",
    "prompt_list",
    "read_scenario_source",
    "run_sweep",
    "short_label",
    "split_values",
    "write_samples_csv",
    "write_sweep_csv",
]

ALIASES: dict[str, str] = {"ber": "links.*.ber", "erasure": "links.*.erasure"}
"""Short keys of a sweep: the same setting on every link direction."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after every round-trip run."""


# --------------------------------------------------------------------------------------------
# Scenario source and keys


def expand_key(raw: Mapping[str, Any], key: str) -> list[str]:
    """The concrete dotted keys that ``key`` names in the raw scenario ``raw``.

    Resolves :data:`ALIASES`, ``+`` (several keys) and ``*`` / ``?`` / ``[..]`` patterns in a
    part (matched against the table names present at that level, in file order). A pattern
    that matches nothing is a :class:`ConfigError` naming the key.
    """
    out: list[str] = []
    for part in key.split("+"):
        part = part.strip()
        part = ALIASES.get(part, part)
        if not part or any(not p.strip() for p in part.split(".")):
            raise ConfigError("empty part in a dotted key", key=key)
        paths: list[tuple[list[str], Any]] = [([], raw)]
        for name in (p.strip() for p in part.split(".")):
            nxt: list[tuple[list[str], Any]] = []
            for prefix, node in paths:
                if any(c in name for c in "*?["):
                    table = node if isinstance(node, Mapping) else {}
                    nxt.extend(([*prefix, k], table[k]) for k in table
                               if fnmatch.fnmatchcase(k, name))
                else:
                    child = node.get(name) if isinstance(node, Mapping) else None
                    nxt.append(([*prefix, name], child))
            paths = nxt
        if not paths:
            raise ConfigError("the pattern matches no key of the scenario", key=part)
        out.extend(".".join(p) for p, _ in paths)
    return list(dict.fromkeys(out))


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` at the commas outside brackets, braces and quotes."""
    values: list[str] = []
    depth = 0
    quote = ""
    current: list[str] = []
    escaped = False
    for ch in text:
        if quote:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    values.append("".join(current).strip())
    return values


def parse_literal(text: str) -> Any:
    """A value as ``--set`` reads it: a TOML literal, or else the text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


@dataclass(frozen=True)
class Vary:
    """One varied key of a sweep: its label (as given), the concrete keys, the values."""

    label: str
    keys: tuple[str, ...]
    values: tuple[str, ...]

    def overrides(self, value: str) -> list[str]:
        return [f"{k}={value}" for k in self.keys]


def parse_vary(spec: str, raw: Mapping[str, Any]) -> Vary:
    """``KEY=V1,V2,...`` (see the module docstring) against the raw scenario ``raw``."""
    label, sep, text = spec.partition("=")
    label = label.strip()
    if not sep or not label:
        raise ConfigError("--vary must look like KEY=V1,V2,...", key=spec)
    values = split_values(text)
    if not values or any(v == "" for v in values):
        raise ConfigError("empty value in the list", key=label)
    if len(set(values)) != len(values):
        raise ConfigError("a value is listed twice", key=label)
    return Vary(label, tuple(expand_key(raw, label)), tuple(values))


def grid(varies: Sequence[Vary]) -> list[dict[str, str]]:
    """Every point of the grid, the first key varying slowest: ``{label: value}``."""
    labels = [v.label for v in varies]
    if len(set(labels)) != len(labels):
        raise ConfigError("a key is varied twice", key=", ".join(labels))
    return [dict(zip(labels, combo, strict=True))
            for combo in itertools.product(*(v.values for v in varies))]


# --------------------------------------------------------------------------------------------
# Evaluating one setting


@dataclass(frozen=True)
class Sample:
    """One prompt's round trip at one setting."""

    repeat: int
    seed: int
    request_id: int
    prompt: str
    status: str
    total_s: float
    bound_s: float
    inference_s: float
    breakdown: Mapping[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.total_s / self.bound_s if self.bound_s > 0 else math.inf


@dataclass(frozen=True)
class Stats:
    """Summary of the samples of one setting (every prompt counts, timeouts included)."""

    prompts: int
    ok: int
    timeouts: int
    median_total_s: float
    p95_total_s: float
    mean_total_s: float
    max_total_s: float
    median_bound_s: float
    median_ratio: float
    p95_ratio: float
    median_overhead_s: float
    p95_overhead_s: float

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Stats:
        if not samples:
            raise ValueError("no samples")
        totals = sorted(s.total_s for s in samples)
        ratios = sorted(s.ratio for s in samples)
        overheads = sorted(s.total_s - s.bound_s for s in samples)
        return cls(
            prompts=len(samples),
            ok=sum(s.status == "ok" for s in samples),
            timeouts=sum(s.status == "timeout" for s in samples),
            median_total_s=statistics.median(totals),
            p95_total_s=percentile(totals, 95),
            mean_total_s=statistics.fmean(totals),
            max_total_s=totals[-1],
            median_bound_s=statistics.median(s.bound_s for s in samples),
            median_ratio=statistics.median(ratios),
            p95_ratio=percentile(ratios, 95),
            median_overhead_s=statistics.median(overheads),
            p95_overhead_s=percentile(overheads, 95),
        )

    def objective(self, name: str) -> float:
        """``median`` or ``p95`` of the total latency."""
        if name == "median":
            return self.median_total_s
        if name == "p95":
            return self.p95_total_s
        raise ConfigError(f"{name!r} is not 'median' or 'p95'", key="objective")

    def as_dict(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class Evaluation:
    """The round trips of one setting: ``repeat`` runs of the prompts, their samples."""

    overrides: tuple[str, ...]
    samples: list[Sample]
    wall_s: float
    scenario: str = ""

    @cached_property
    def stats(self) -> Stats:
        return Stats.of(self.samples)


def prepare(base: Mapping[str, Any], overrides: Iterable[str]) -> Scenario:
    """Validate ``base`` with ``overrides`` applied (raises :class:`ConfigError`)."""
    return parse_scenario(apply_overrides(base, overrides))


def prompt_list(scenario: Scenario, prompts: Sequence[str] | None,
                n_prompts: int | None) -> list[str]:
    """The prompts of a run: ``prompts`` or the scenario's, cycled to ``n_prompts``."""
    texts = list(prompts) if prompts else list(scenario.run.prompts)
    if n_prompts is not None:
        if n_prompts < 1:
            raise ConfigError(f"{n_prompts} must be >= 1", key="prompts")
        texts = [texts[i % len(texts)] for i in range(n_prompts)]
    return texts


def evaluate(base: Mapping[str, Any], overrides: Sequence[str], backend: ModelBackend, *,
             prompts: Sequence[str] | None = None, n_prompts: int | None = None,
             repeat: int = 1, progress: Callable[[], None] | None = None) -> Evaluation:
    """Run the round trip of the raw scenario ``base`` with ``overrides``, ``repeat`` times
    with the seeds ``seed .. seed + repeat - 1`` (``seed`` from the scenario after the
    overrides), and collect every prompt's latency."""
    if repeat < 1:
        raise ConfigError(f"{repeat} must be >= 1", key="repeat")
    t0 = time.perf_counter()
    first = prepare(base, overrides)
    texts = prompt_list(first, prompts, n_prompts)
    samples: list[Sample] = []
    for r in range(repeat):
        seed = first.seed + r
        scenario = first if r == 0 else prepare(base, [*overrides, f"scenario.seed={seed}"])
        report = run_roundtrip(scenario, backend, prompts=texts)
        samples.extend(Sample(r, seed, p.request_id, p.prompt, p.status, p.total_s, p.bound_s,
                              p.inference_s, dict(p.breakdown)) for p in report.prompts)
        if progress is not None:
            progress()
    return Evaluation(tuple(overrides), samples, time.perf_counter() - t0, first.name)


# --------------------------------------------------------------------------------------------
# The sweep


@dataclass
class SweepPoint:
    values: dict[str, str]
    evaluation: Evaluation

    @property
    def stats(self) -> Stats:
        return self.evaluation.stats


@dataclass
class SweepResult:
    scenario: str
    varies: list[Vary]
    points: list[SweepPoint]
    base_overrides: tuple[str, ...] = ()
    repeat: int = 1
    prompts: int = 0
    memoized: bool = False


def run_sweep(source: str | Path | Mapping[str, Any], varies: Sequence[str | Vary],
              backend: ModelBackend, *, sets: Sequence[str] = (),
              prompts: Sequence[str] | None = None, n_prompts: int | None = None,
              repeat: int = 1, progress: Progress | None = None) -> SweepResult:
    """Run the grid of ``varies`` over the scenario ``source`` (name, file or raw dict) with
    the fixed overrides ``sets``; ``progress(done, total)`` after every run."""
    raw = (copy.deepcopy(dict(source)) if isinstance(source, Mapping)
           else read_scenario_source(source))
    base = apply_overrides(raw, sets)
    parsed = [v if isinstance(v, Vary) else parse_vary(v, base) for v in varies]
    if not parsed:
        raise ConfigError("nothing to vary", key="vary")
    points = grid(parsed)
    by_label = {v.label: v for v in parsed}
    # validate every point before running anything
    for point in points:
        prepare(base, _point_overrides(point, by_label))
    total = len(points) * repeat
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    results = []
    name = prepare(base, ()).name
    n = 0
    for point in points:
        ev = evaluate(base, _point_overrides(point, by_label), backend, prompts=prompts,
                      n_prompts=n_prompts, repeat=repeat, progress=tick)
        n = len(ev.samples) // repeat
        results.append(SweepPoint(point, ev))
    return SweepResult(name, parsed, results, tuple(sets), repeat, n,
                       isinstance(backend, MemoBackend))


def _point_overrides(point: Mapping[str, str], by_label: Mapping[str, Vary]) -> list[str]:
    return [o for label, value in point.items() for o in by_label[label].overrides(value)]


# --------------------------------------------------------------------------------------------
# Output

STAT_COLUMNS = ("prompts", "ok", "timeouts", "median_total_s", "p95_total_s", "mean_total_s",
                "max_total_s", "median_bound_s", "median_ratio", "p95_ratio",
                "median_overhead_s", "p95_overhead_s")


def write_sweep_csv(result: SweepResult, path: str | Path) -> Path:
    """One row per grid point: the varied values, then :data:`STAT_COLUMNS`."""
    path = Path(path)
    labels = [v.label for v in result.varies]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*labels, "repeat", *STAT_COLUMNS])
        for point in result.points:
            s = point.stats.as_dict()
            w.writerow([*(point.values[k] for k in labels), result.repeat,
                        *(_fmt(s[c]) for c in STAT_COLUMNS)])
    return path


def write_samples_csv(result: SweepResult, path: str | Path) -> Path:
    """One row per prompt of every run: the varied values, repeat, seed, prompt, status,
    total, bound, ratio, inference."""
    path = Path(path)
    labels = [v.label for v in result.varies]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*labels, "repeat", "seed", "request_id", "prompt", "status", "total_s",
                    "bound_s", "ratio", "inference_s"])
        for point in result.points:
            for s in point.evaluation.samples:
                w.writerow([*(point.values[k] for k in labels), s.repeat, s.seed, s.request_id,
                            s.prompt, s.status, _fmt(s.total_s), _fmt(s.bound_s),
                            _fmt(s.ratio), _fmt(s.inference_s)])
    return path


def _fmt(value: float | int) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _numeric(values: Sequence[str]) -> list[float] | None:
    out = []
    for v in values:
        x = parse_literal(v)
        if isinstance(x, bool) or not isinstance(x, int | float):
            return None
        out.append(float(x))
    return out


def plot_sweep(result: SweepResult, path: str | Path, *, title: str | None = None) -> Path:
    """PNG: latency (median solid, p95 dashed) and median total/bound against the first varied
    key, one line per combination of the other varied keys."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    xvary, others = result.varies[0], result.varies[1:]
    xs_num = _numeric(xvary.values)
    positions = xs_num if xs_num is not None else list(range(len(xvary.values)))
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax_lat, ax_ratio = fig.subplots(1, 2)
    groups: dict[tuple[str, ...], list[SweepPoint]] = {}
    for point in result.points:
        groups.setdefault(tuple(point.values[o.label] for o in others), []).append(point)
    colors = [f"C{i % 10}" for i in range(len(groups))]
    for color, (key, pts) in zip(colors, groups.items(), strict=True):
        label = ", ".join(f"{short_label(o.label)}={v}"
                          for o, v in zip(others, key, strict=True)) or "all"
        order = {v: i for i, v in enumerate(xvary.values)}
        pts = sorted(pts, key=lambda p: order[p.values[xvary.label]])
        x = [positions[order[p.values[xvary.label]]] for p in pts]
        ax_lat.plot(x, [p.stats.median_total_s for p in pts], "o-", color=color,
                    label=f"{label} median")
        ax_lat.plot(x, [p.stats.p95_total_s for p in pts], "s--", color=color,
                    label=f"{label} p95")
        ax_ratio.plot(x, [p.stats.median_ratio for p in pts], "o-", color=color,
                      label=f"{label} median")
        ax_ratio.plot(x, [p.stats.p95_ratio for p in pts], "s--", color=color,
                      label=f"{label} p95")
    for ax in (ax_lat, ax_ratio):
        _x_axis(ax, xvary, xs_num)
        ax.grid(True, which="both", alpha=0.3)
    lat = [p.stats.p95_total_s for p in result.points] + \
        [p.stats.median_total_s for p in result.points]
    if min(lat) > 0 and max(lat) / min(lat) > 20:
        ax_lat.set_yscale("log")
    ax_lat.set_ylabel("total latency, s")
    ax_lat.set_title("end-to-end latency (median solid, p95 dashed)")
    ratios = [p.stats.p95_ratio for p in result.points] + \
        [p.stats.median_ratio for p in result.points]
    if all(math.isfinite(r) for r in ratios) and max(ratios) / min(ratios) > 20:
        ax_ratio.set_yscale("log")
    else:
        ax_ratio.ticklabel_format(axis="y", useOffset=False)
    ax_ratio.set_ylabel("total / bound")
    ax_ratio.set_title("total / physical bound (median solid, p95 dashed)")
    ax_lat.legend(fontsize="small")
    ax_ratio.legend(fontsize="small")
    same = ("; inference memoized (identical at every point)" if result.memoized else "")
    fig.suptitle(title or (f"{result.scenario}: {result.prompts} prompts x {result.repeat} "
                           f"run(s) per point{same}"))
    fig.savefig(path, dpi=110)
    return path


def short_label(label: str) -> str:
    """A legend label: the last two parts of a long dotted key."""
    return label if len(label) <= 24 else ".".join(label.split(".")[-2:])


def _x_axis(ax: Any, vary: Vary, xs: list[float] | None) -> None:
    ax.set_xlabel(vary.label if vary.label in ALIASES or len(vary.keys) == 1
                  else f"{vary.label} ({len(vary.keys)} keys)")
    if xs is None:
        ax.set_xticks(range(len(vary.values)), list(vary.values))
        return
    positive = [x for x in xs if x > 0]
    if positive and max(positive) / min(positive) >= 100:
        if len(positive) == len(xs):
            ax.set_xscale("log")
        elif min(xs) >= 0:
            ax.set_xscale("symlog", linthresh=min(positive))
