"""Parameter sweeps of the end-to-end round trip: a grid of scenario overrides, CSV and plots.

A sweep takes a scenario and one or more *varied keys*, each with a list of values
(``--vary KEY=V1,V2,...``), runs the round trip (:func:`linkstack.sims.roundtrip.run_roundtrip`)
at every point of the grid (the Cartesian product), ``repeat`` times with seeds spawned from
the scenario seed by ``numpy.random.SeedSequence`` (:func:`repeat_seeds`; the same seeds at
every point: common random numbers, so two points differ only by their settings and by the
error draws those settings cause), and summarises the latency of every prompt: median and 95th
percentile of the total, the physical bound and their ratio, and bootstrap intervals of the
median and p95 across seeds.

Keys are the dotted scenario keys of ``--set`` (:func:`linkstack.sims.scenario.apply_overrides`),
with three conveniences:

* ``*`` matches any table name at its level: ``links.*.ber`` is the BER of every link;
* ``ber`` and ``erasure`` alone mean ``links.*.ber`` / ``links.*.erasure``;
* ``KEY1+KEY2`` sets several keys to the same value (e.g. both directions of an ISL).

Values are TOML literals (``1e-5``, ``true``, ``"tm-rs-255-239-i1"``; a bare word is a string);
commas inside brackets or quotes do not split.

Every prompt answered at a point counts in its statistics; a prompt that timed out counts with
its total (the ``[run] timeout_s``), so a setting that loses prompts is never mistaken for a
fast one.

How it runs. Each (grid point, seed) is one *row*: one run of the prompts, keyed by a hash of
the scenario as it runs (file, profiles and overrides), the seed, the prompts, the model's
answers to them and the linkstack version (:func:`row_key`). The model runs here, once per
distinct prompt and parameters (:class:`~linkstack.sims.memo.MemoBackend`, :func:`plan_rows`);
the rows run on a :class:`~linkstack.sims.distributed.Runner` — in this process, or as
``dask.distributed`` tasks — that replay those answers and measured inference times
(:func:`run_row`), so every point sees identical inference and the comparison is the
protocol's alone. A row's result depends on the row alone, never on where or in which order
it ran. Finished rows go to a :class:`RowStore` (``<out>/rows/<key>.json``): a sweep run again
keeps them and runs only the missing rows. A row that raises is reported with its point's
values and the error; the others go on.
"""

from __future__ import annotations

import copy
import csv
import fnmatch
import hashlib
import itertools
import json
import math
import os
import shutil
import socket
import statistics
import time
import tomllib
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from linkstack import __version__
from linkstack.errors import ConfigError, LinkstackError
from linkstack.payload.backend import ModelBackend
from linkstack.payload.messages import GenerationParams
from linkstack.sims.distributed import Done, Lost, Runner, SerialRunner
from linkstack.sims.memo import MemoBackend, ReplayBackend, ReplayMiss
from linkstack.sims.profiles import load_profiles
from linkstack.sims.roundtrip import percentile, run_roundtrip
from linkstack.sims.scenario import (
    Scenario,
    apply_overrides,
    load_scenario,
    parse_scenario,
    read_scenario_source,
)

__all__ = [
    "ALIASES",
    "Evaluation",
    "Failure",
    "Row",
    "RowContext",
    "RowResult",
    "RowStore",
    "RunFailed",
    "Sample",
    "Stats",
    "SweepPoint",
    "SweepResult",
    "Vary",
    "bootstrap_ci",
    "evaluate",
    "evaluate_many",
    "expand_key",
    "expand_sets",
    "generation_params",
    "grid",
    "parse_literal",
    "parse_vary",
    "plan_rows",
    "plot_sweep",
    "prepare",
    "prompt_list",
    "read_scenario_source",
    "repeat_seeds",
    "row_key",
    "run_row",
    "run_sweep",
    "scenario_digest",
    "short_label",
    "split_values",
    "warm_up",
    "write_failures_csv",
    "write_samples_csv",
    "write_sweep_csv",
]

ALIASES: dict[str, str] = {"ber": "links.*.ber", "erasure": "links.*.erasure"}
"""Short keys of a sweep: the same setting on every link direction."""

STORE_FORMAT = 1
"""Version of the row records of a sweep's store (part of every row key)."""

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


def expand_sets(raw: Mapping[str, Any], sets: Iterable[str]) -> list[str]:
    """``--set KEY=VALUE`` overrides with the conveniences of a varied key (:data:`ALIASES`,
    ``*`` patterns, ``+``) expanded to concrete keys: ``ber=1e-3`` sets every link's BER."""
    out = []
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            out.append(item)  # apply_overrides names what is wrong with it
            continue
        out += [f"{k}={value}" for k in expand_key(raw, key.strip())]
    return out


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


# --------------------------------------------------------------------------------------------
# Seeds, rows and their keys


def repeat_seeds(seed: int, n: int) -> list[int]:
    """The scenario seeds of ``n`` repeated runs from the scenario seed ``seed``: the first
    32-bit word of each child of ``numpy.random.SeedSequence(seed).spawn(...)``, in spawn
    order (a repeat of an earlier seed is skipped). The i-th seed depends on ``seed`` and i
    alone: not on ``n``, nor on which worker runs what in which order. (32 bits because the
    seed also travels as the prompt's sampler seed, a 32-bit field.)"""
    if n < 1:
        raise ConfigError(f"{n} must be >= 1", key="repeat")
    root = np.random.SeedSequence(seed)
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < n:
        for child in root.spawn(n - len(out)):
            value = int(child.generate_state(1, np.uint32)[0])
            if value not in seen:
                seen.add(value)
                out.append(value)
    return out


def generation_params(scenario: Scenario) -> GenerationParams:
    """What the ground client asks the model for in a run of ``scenario`` (as
    :mod:`linkstack.sims.roundtrip` builds it; a drift shows as a replay miss, never as a
    wrong answer)."""
    return GenerationParams(max_tokens=scenario.run.max_tokens,
                            temperature=scenario.run.temperature, seed=scenario.seed)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def scenario_digest(effective: Mapping[str, Any]) -> str:
    """Hash of a scenario as it runs: the file with every override applied, and the built-in
    link profiles it may name."""
    return _sha256(_canonical({"scenario": effective, "profiles": load_profiles()}))


def row_key(digest: str, seed: int, prompts: Sequence[str], model: str) -> str:
    """The store key of one run: the scenario (file and overrides, :func:`scenario_digest`),
    the seed, the prompts, what the model answers them (:meth:`MemoBackend.fingerprint`) and
    the linkstack version."""
    return _sha256(_canonical({"format": STORE_FORMAT, "version": __version__,
                               "scenario": digest, "seed": seed, "prompts": list(prompts),
                               "model": model}))


@dataclass(frozen=True)
class Row:
    """One run to do: a setting at one seed. ``overrides`` are the setting's, then
    ``scenario.seed``; the worker applies them to the context's base scenario."""

    key: str
    overrides: tuple[str, ...]
    prompts: tuple[str, ...]
    repeat: int
    seed: int


@dataclass(frozen=True)
class RowContext:
    """What every run of a sweep shares: the raw scenario with the fixed overrides applied,
    and the memoized model answers."""

    base: Mapping[str, Any]
    backend: ReplayBackend


@dataclass(frozen=True)
class RowResult:
    """What a worker sends back for a :class:`Row`: its samples, or the error it raised."""

    key: str
    samples: tuple[Sample, ...] | None
    wall_s: float
    worker: str
    version: str
    error: str | None = None
    error_type: str = ""
    linkstack_error: bool = False


def plan_rows(base: Mapping[str, Any], overrides: Sequence[str], memo: MemoBackend, *,
              prompts: Sequence[str] | None = None, n_prompts: int | None = None,
              repeat: int = 1, effective: Mapping[str, Any] | None = None,
              first: Scenario | None = None) -> list[Row]:
    """The ``repeat`` runs of one setting, with their keys; runs the model (through the memo)
    on every prompt they will send, so that the workers only replay. Raises
    :class:`ConfigError` for a setting that does not validate, and whatever the model
    raises. ``effective`` (``apply_overrides(base, overrides)``) and ``first`` (its parsed
    scenario) are given by a caller that has them already."""
    if effective is None:
        effective = apply_overrides(base, overrides)
    if first is None:
        first = parse_scenario(effective)
    texts = prompt_list(first, prompts, n_prompts)
    digest = scenario_digest(effective)
    rows = []
    for r, seed in enumerate(repeat_seeds(first.seed, repeat)):
        params = generation_params(replace(first, seed=seed))
        for text in dict.fromkeys(texts):
            memo.prime(text, params)
        key = row_key(digest, seed, texts, memo.fingerprint(texts, params))
        rows.append(Row(key, (*overrides, f"scenario.seed={seed}"), tuple(texts), r, seed))
    return rows


def run_row(context: RowContext, row: Row) -> RowResult:
    """Run one :class:`Row` (on a worker, or here): the round trip, replaying the memo. Every
    error is returned, not raised."""
    t0 = time.perf_counter()
    backend = context.backend.session()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        scenario = prepare(context.base, row.overrides)
        report = run_roundtrip(scenario, backend, prompts=list(row.prompts))
        if backend.missing:
            raise ReplayMiss("not memoized by the client: " + "; ".join(backend.missing))
        samples = tuple(Sample(row.repeat, row.seed, p.request_id, p.prompt, p.status,
                               p.total_s, p.bound_s, p.inference_s, dict(p.breakdown))
                        for p in report.prompts)
        return RowResult(row.key, samples, time.perf_counter() - t0, worker, __version__)
    except Exception as exc:
        while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]  # trio's nurseries wrap what their tasks raise
        linkstack = isinstance(exc, LinkstackError)
        text = str(exc) or type(exc).__name__
        if not linkstack:  # a bug: say where
            frames = traceback.extract_tb(exc.__traceback__)
            if frames:
                text += f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})"
        return RowResult(row.key, None, time.perf_counter() - t0, worker, __version__,
                         " ".join(text.split()), type(exc).__name__, linkstack)


def warm_up() -> None:
    """One short round trip of the default scenario with a canned answer, run once by each
    Dask worker before its first row (:class:`~linkstack.sims.distributed.DaskRunner`'s
    ``preload``): the first round trip in a process pays about 35 ms more than the next ones
    (first calls that build code tables and caches), which would otherwise fall on the first
    rows of a sweep."""
    from linkstack.payload.backend import Generation, RecordedBackend

    backend = RecordedBackend({}, default=Generation("Warm.", 4, 2, 0.01))
    run_roundtrip(load_scenario("default"), backend, prompts=["warm up"])


class RunFailed(LinkstackError):
    """A run raised (on a worker or here): ``str()`` is the error's text; ``error_type`` its
    class; ``linkstack_error`` whether it was a :class:`LinkstackError` (a setting the stack
    refuses, e.g. a window too wide for FARM-1) rather than a bug or a lost worker."""

    def __init__(self, text: str, error_type: str = "", linkstack_error: bool = False) -> None:
        super().__init__(text)
        self.error_type = error_type
        self.linkstack_error = linkstack_error


def _outcome(row: Row, outcome: Done | Lost) -> tuple[Sample, ...] | RunFailed:
    """The samples of a finished row, or why it failed."""
    if isinstance(outcome, Lost):
        return RunFailed(f"lost on the cluster: {outcome.reason}", "Lost")
    result: RowResult = outcome.value
    if result.version != __version__:
        return RunFailed(f"the worker {result.worker} runs linkstack {result.version}, this "
                         f"client {__version__}: install the same version everywhere",
                         "VersionMismatch")
    if result.samples is None:
        return RunFailed(result.error or "failed", result.error_type, result.linkstack_error)
    return result.samples


def evaluate_many(base: Mapping[str, Any], settings: Sequence[Sequence[str]],
                  backend: ModelBackend, *, prompts: Sequence[str] | None = None,
                  n_prompts: int | None = None, repeat: int = 1, runner: Runner | None = None,
                  progress: Callable[[], None] | None = None,
                  ) -> list[Evaluation | LinkstackError]:
    """:func:`evaluate` for several settings at once, their runs spread over ``runner``: one
    :class:`Evaluation` per setting, or the error that stopped it (:class:`ConfigError` for a
    setting that does not validate, :class:`RunFailed` for a run that raised)."""
    memo = backend if isinstance(backend, MemoBackend) else MemoBackend(backend)
    names: list[str] = []
    plans: list[list[Row] | LinkstackError] = []
    for overrides in settings:
        try:
            plans.append(plan_rows(base, overrides, memo, prompts=prompts,
                                   n_prompts=n_prompts, repeat=repeat))
            names.append(prepare(base, overrides).name)
        except LinkstackError as exc:
            plans.append(exc)
            names.append("")
    todo = list({row.key: row for plan in plans if not isinstance(plan, LinkstackError)
                 for row in plan}.values())  # a run two settings share is done once
    results: dict[str, tuple[Sample, ...] | RunFailed] = {}
    walls: dict[str, float] = {}

    def on_result(i: int, outcome: Done | Lost) -> None:
        row = todo[i]
        results[row.key] = _outcome(row, outcome)
        walls[row.key] = outcome.value.wall_s if isinstance(outcome, Done) else 0.0
        if progress is not None:
            progress()

    (runner or SerialRunner()).run(run_row, RowContext(base, memo.replay()), todo, on_result)
    out: list[Evaluation | LinkstackError] = []
    for overrides, plan, name in zip(settings, plans, names, strict=True):
        if isinstance(plan, LinkstackError):
            out.append(plan)
            continue
        got = [results[row.key] for row in plan]
        failed = next((g for g in got if isinstance(g, RunFailed)), None)
        if failed is not None:
            out.append(failed)
            continue
        samples = [replace(s, repeat=row.repeat) for row, g in zip(plan, got, strict=True)
                   for s in g]  # type: ignore[union-attr]
        out.append(Evaluation(tuple(overrides), samples,
                              sum(walls[row.key] for row in plan), name))
    return out


def evaluate(base: Mapping[str, Any], overrides: Sequence[str], backend: ModelBackend, *,
             prompts: Sequence[str] | None = None, n_prompts: int | None = None,
             repeat: int = 1, progress: Callable[[], None] | None = None,
             runner: Runner | None = None) -> Evaluation:
    """Run the round trip of the raw scenario ``base`` with ``overrides``, ``repeat`` times
    with the seeds :func:`repeat_seeds` spawns from the scenario's seed (after the overrides),
    and collect every prompt's latency. Raises :class:`ConfigError` for a setting that does
    not validate and :class:`RunFailed` for a run that raised."""
    (ev,) = evaluate_many(base, [overrides], backend, prompts=prompts, n_prompts=n_prompts,
                          repeat=repeat, runner=runner, progress=progress)
    if isinstance(ev, LinkstackError):
        raise ev
    return ev


# --------------------------------------------------------------------------------------------
# The store of finished runs


class RowStore:
    """The finished runs of a sweep, one JSON file per (grid point, seed) named by its
    :func:`row_key`: ``<folder>/rows/<key>.json`` (written whole, then renamed, so that a
    killed sweep leaves no half row, only a temporary file that the next run deletes:
    :meth:`discard_partial`), and the memoized model answers in
    ``<folder>/memo.json`` under ``identity`` (which model answered). ``folder`` None keeps
    the rows in memory."""

    def __init__(self, folder: str | Path | None, identity: str | None = None) -> None:
        self.folder = None if folder is None else Path(folder)
        self.identity = identity
        self._memory: dict[str, dict[str, Any]] = {}

    @property
    def rows_dir(self) -> Path | None:
        return None if self.folder is None else self.folder / "rows"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.rows_dir is None:
            return self._memory.get(key)
        try:
            doc = json.loads((self.rows_dir / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and doc.get("key") == key else None

    def put(self, key: str, doc: dict[str, Any]) -> None:
        if self.rows_dir is None:
            self._memory[key] = doc
            return
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        path = self.rows_dir / f"{key}.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def discard_partial(self) -> int:
        """Delete the half-written files (``*.tmp<pid>``) that a sweep killed while writing
        left behind, those of processes that no longer run; how many."""
        if self.folder is None:
            return 0
        gone = 0
        for folder in (self.folder, self.folder / "rows"):
            for path in folder.glob("*.tmp*"):
                pid = path.suffix[len(".tmp"):]
                if not pid.isdigit() or _alive(int(pid)):
                    continue
                path.unlink(missing_ok=True)
                gone += 1
        return gone

    def clear(self) -> None:
        """Forget every row and the memo (``--fresh``)."""
        self._memory.clear()
        if self.folder is None:
            return
        if self.rows_dir is not None and self.rows_dir.is_dir():
            shutil.rmtree(self.rows_dir)
        (self.folder / "memo.json").unlink(missing_ok=True)

    def load_memo(self, memo: MemoBackend) -> int:
        if self.folder is None or self.identity is None:
            return 0
        try:
            text = (self.folder / "memo.json").read_text(encoding="utf-8")
        except OSError:
            return 0
        return memo.restore(text, self.identity)

    def save_memo(self, memo: MemoBackend) -> None:
        if self.folder is None or self.identity is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "memo.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(memo.dumps(self.identity), encoding="utf-8")
        os.replace(tmp, path)


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (this one included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: alive
        return True
    return True


def _sample_doc(s: Sample) -> dict[str, Any]:
    return asdict(s)


def _sample_of(doc: Mapping[str, Any], repeat: int) -> Sample:
    return Sample(repeat, int(doc["seed"]), int(doc["request_id"]), str(doc["prompt"]),
                  str(doc["status"]), float(doc["total_s"]), float(doc["bound_s"]),
                  float(doc["inference_s"]), {str(k): float(v)
                                              for k, v in doc["breakdown"].items()})


# --------------------------------------------------------------------------------------------
# The sweep


@dataclass
class SweepPoint:
    values: dict[str, str]
    evaluation: Evaluation

    @property
    def stats(self) -> Stats:
        return self.evaluation.stats

    @cached_property
    def ci(self) -> dict[str, tuple[float, float]]:
        """95 % bootstrap intervals of the median and p95 across seeds (:func:`bootstrap_ci`)."""
        return bootstrap_ci(self.evaluation.samples)


@dataclass(frozen=True)
class Failure:
    """A run of a grid point that raised (or was lost): its values, seed and error."""

    values: dict[str, str]
    repeat: int | None
    seed: int | None
    error: str
    error_type: str = ""


@dataclass
class SweepResult:
    scenario: str
    varies: list[Vary]
    points: list[SweepPoint]
    base_overrides: tuple[str, ...] = ()
    repeat: int = 1
    prompts: int = 0
    memoized: bool = False
    failures: list[Failure] = field(default_factory=list)
    ran: int = 0
    """Runs done by this call."""
    reused: int = 0
    """Runs found finished in the store."""
    runs: int = 0
    """Runs in the grid (points x repeat)."""


def run_sweep(source: str | Path | Mapping[str, Any], varies: Sequence[str | Vary],
              backend: ModelBackend, *, sets: Sequence[str] = (),
              prompts: Sequence[str] | None = None, n_prompts: int | None = None,
              repeat: int = 1, progress: Progress | None = None, store: RowStore | None = None,
              fresh: bool = False, runner: Runner | None = None) -> SweepResult:
    """Run the grid of ``varies`` over the scenario ``source`` (name, file or raw dict) with
    the fixed overrides ``sets``; ``progress(done, total)`` after every run.

    Every (grid point, seed) is one run, keyed by :func:`row_key`. Runs already in ``store``
    are kept and only the missing ones run (``fresh`` empties the store first); they run on
    ``runner`` (default: here, in order), replaying the answers the model gave here once per
    distinct prompt. A run that raises is listed in :attr:`SweepResult.failures` and its point
    left out of :attr:`SweepResult.points`; the others go on."""
    raw = (copy.deepcopy(dict(source)) if isinstance(source, Mapping)
           else read_scenario_source(source))
    sets = expand_sets(raw, sets)
    base = apply_overrides(raw, sets)
    parsed = [v if isinstance(v, Vary) else parse_vary(v, base) for v in varies]
    if not parsed:
        raise ConfigError("nothing to vary", key="vary")
    if repeat < 1:
        raise ConfigError(f"{repeat} must be >= 1", key="repeat")
    points = grid(parsed)
    by_label = {v.label: v for v in parsed}
    # validate every point before running anything
    effective = [apply_overrides(base, _point_overrides(point, by_label)) for point in points]
    firsts = [parse_scenario(e) for e in effective]
    texts = prompt_list(firsts[0], prompts, n_prompts) if firsts else []
    store = store if store is not None else RowStore(None)
    if fresh:
        store.clear()
    store.discard_partial()
    memo = backend if isinstance(backend, MemoBackend) else MemoBackend(backend)
    store.load_memo(memo)
    failures: list[Failure] = []
    plans: list[list[Row] | None] = []
    for point, point_effective, first in zip(points, effective, firsts, strict=True):
        try:
            plans.append(plan_rows(base, _point_overrides(point, by_label), memo,
                                   prompts=prompts, n_prompts=n_prompts, repeat=repeat,
                                   effective=point_effective, first=first))
        except Exception as exc:  # the model failed on a prompt of this point
            failures.append(Failure(point, None, None, f"model: {exc}", type(exc).__name__))
            plans.append(None)
    store.save_memo(memo)
    todo: dict[str, tuple[Row, dict[str, str]]] = {}
    for point, plan in zip(points, plans, strict=True):
        for row in plan or ():
            if row.key not in todo and store.get(row.key) is None:
                todo[row.key] = (row, point)
    runs = len(points) * repeat
    reused = sum(len(plan) for plan in plans if plan) - len(todo)  # includes duplicates
    done = runs - len(todo)
    if progress is not None:
        progress(done, runs)
    items = list(todo.values())
    name = prepare(base, ()).name

    def on_result(i: int, outcome: Done | Lost) -> None:
        nonlocal done
        row, point = items[i]
        got = _outcome(row, outcome)
        if isinstance(got, RunFailed):
            failures.append(Failure(point, row.repeat, row.seed, str(got), got.error_type))
        else:
            assert isinstance(outcome, Done)
            result: RowResult = outcome.value
            store.put(row.key, {
                "format": STORE_FORMAT, "key": row.key, "version": __version__,
                "scenario": name, "values": point, "overrides": list(row.overrides),
                "seed": row.seed, "prompts": list(row.prompts),
                "samples": [_sample_doc(s) for s in got], "wall_s": result.wall_s,
                "worker": result.worker})
        done += 1
        if progress is not None:
            progress(done, runs)

    (runner or SerialRunner()).run(run_row, RowContext(base, memo.replay()),
                                   [row for row, _ in items], on_result)
    order = {tuple(point.items()): i for i, point in enumerate(points)}
    failures.sort(key=lambda f: (order[tuple(f.values.items())], f.repeat or 0))
    results = []
    for point, plan in zip(points, plans, strict=True):
        found = [store.get(row.key) for row in plan or ()]
        docs = [d for d in found if d is not None]
        if plan is None or len(docs) != len(plan):
            continue
        samples = [_sample_of(s, row.repeat) for row, d in zip(plan, docs, strict=True)
                   for s in d["samples"]]
        wall = sum(float(d["wall_s"]) for d in docs)
        results.append(SweepPoint(point, Evaluation(
            tuple(_point_overrides(point, by_label)), samples, wall, name)))
    return SweepResult(name, parsed, results, tuple(sets), repeat, len(texts), True, failures,
                       ran=len(items), reused=reused, runs=runs)


def _point_overrides(point: Mapping[str, str], by_label: Mapping[str, Vary]) -> list[str]:
    return [o for label, value in point.items() for o in by_label[label].overrides(value)]


# --------------------------------------------------------------------------------------------
# Confidence intervals

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20240917


def bootstrap_ci(samples: Sequence[Sample], *, level: float = 0.95,
                 resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap intervals of the median and p95 of the total latency across
    seeds: the runs (one per seed, all their prompts together) are resampled with
    replacement, ``resamples`` times with a fixed seed, and the pooled median and p95 of
    each resample give the interval. NaN with fewer than two runs."""
    runs: dict[int, list[float]] = {}
    for s in samples:
        runs.setdefault(s.repeat, []).append(s.total_s)
    nan = (math.nan, math.nan)
    if len(runs) < 2:
        return {"median": nan, "p95": nan}
    rng = np.random.default_rng(seed)
    groups = [np.asarray(v, dtype=float) for v in runs.values()]
    picks = rng.integers(0, len(groups), size=(resamples, len(groups)))
    if len({len(g) for g in groups}) == 1:
        pooled = np.stack(groups)[picks].reshape(resamples, -1)
        stats = np.percentile(pooled, [50, 95], axis=1)
    else:
        stats = np.array([np.percentile(np.concatenate([groups[j] for j in row]), [50, 95])
                          for row in picks]).T
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail], axis=1)
    return {"median": (float(lo[0]), float(hi[0])), "p95": (float(lo[1]), float(hi[1]))}


# --------------------------------------------------------------------------------------------
# Output

STAT_COLUMNS = ("prompts", "ok", "timeouts", "median_total_s", "p95_total_s", "mean_total_s",
                "max_total_s", "median_bound_s", "median_ratio", "p95_ratio",
                "median_overhead_s", "p95_overhead_s")


CI_COLUMNS = ("median_ci_low_s", "median_ci_high_s", "p95_ci_low_s", "p95_ci_high_s")
"""95 % bootstrap intervals across seeds (:func:`bootstrap_ci`; empty with one seed)."""


def write_sweep_csv(result: SweepResult, path: str | Path) -> Path:
    """One row per complete grid point: the varied values, then :data:`STAT_COLUMNS` and
    :data:`CI_COLUMNS`."""
    path = Path(path)
    labels = [v.label for v in result.varies]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*labels, "repeat", *STAT_COLUMNS, *CI_COLUMNS])
        for point in result.points:
            s = point.stats.as_dict()
            ci = point.ci
            bounds = [*ci["median"], *ci["p95"]]
            w.writerow([*(point.values[k] for k in labels), result.repeat,
                        *(_fmt(s[c]) for c in STAT_COLUMNS),
                        *("" if math.isnan(b) else _fmt(b) for b in bounds)])
    return path


def write_failures_csv(result: SweepResult, path: str | Path) -> Path:
    """One row per failed run: the varied values, repeat, seed, error type and message."""
    path = Path(path)
    labels = [v.label for v in result.varies]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*labels, "repeat", "seed", "error_type", "error"])
        for fail in result.failures:
            w.writerow([*(fail.values[k] for k in labels),
                        "" if fail.repeat is None else fail.repeat,
                        "" if fail.seed is None else fail.seed, fail.error_type, fail.error])
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
    """PNG: latency (median solid, p95 dashed, each with its bootstrap interval across seeds
    as a band when there are several) and median total/bound against the first varied key,
    one line per combination of the other varied keys."""
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
        for stat, alpha in (("median", 0.2), ("p95", 0.1)):
            lo = [p.ci[stat][0] for p in pts]
            hi = [p.ci[stat][1] for p in pts]
            if not any(math.isnan(v) for v in lo + hi):
                ax_lat.fill_between(x, lo, hi, color=color, alpha=alpha, linewidth=0)
        ax_ratio.plot(x, [p.stats.median_ratio for p in pts], "o-", color=color,
                      label=f"{label} median")
        ax_ratio.plot(x, [p.stats.p95_ratio for p in pts], "s--", color=color,
                      label=f"{label} p95")
    for ax in (ax_lat, ax_ratio):
        _x_axis(ax, xvary, xs_num)
        ax.grid(True, which="both", alpha=0.3)
    lat = [p.stats.p95_total_s for p in result.points] + \
        [p.stats.median_total_s for p in result.points]
    if lat and min(lat) > 0 and max(lat) / min(lat) > 20:
        ax_lat.set_yscale("log")
    ax_lat.set_ylabel("total latency, s")
    ax_lat.set_title("end-to-end latency (median solid, p95 dashed)")
    ratios = [p.stats.p95_ratio for p in result.points] + \
        [p.stats.median_ratio for p in result.points]
    if ratios and all(math.isfinite(r) and r > 0 for r in ratios) and \
            max(ratios) / min(ratios) > 20:
        ax_ratio.set_yscale("log")
    else:
        ax_ratio.ticklabel_format(axis="y", useOffset=False)
    ax_ratio.set_ylabel("total / bound")
    ax_ratio.set_title("total / physical bound (median solid, p95 dashed)")
    ax_lat.legend(fontsize="small")
    ax_ratio.legend(fontsize="small")
    same = ("; inference memoized (identical at every point)" if result.memoized else "")
    if result.repeat > 1:
        same += "\nbands: 95 % bootstrap intervals of the median and p95 across the seeds"
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
