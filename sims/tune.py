"""Tuning the protocol settings of a scenario for its channel conditions.

The search space is derived from the scenario's path (:func:`linkstack.sims.topology.plan_path`)
and the settings the hop endpoints read (:func:`linkstack.sims.topology.build_endpoints`):

RF hop (TC uplink with COP-1, TM downlink; :mod:`linkstack.hops.rf`):
    the FOP-1 managed parameters (CCSDS 232.1-B-2 §5.1) ``t1_initial`` (Timer_Initial_Value),
    ``transmission_limit`` and ``window_width`` K (FARM-1's W, §6.1, defaults to 2K), the
    operator's ``recovery_wait`` after an alert; the uplink's maximum TC frame length (232.0-B-4
    §4.1.2.7, ≤ 1024) and coding: ``tc-bch`` / ``tc-bch-rand`` (BCH(63,56) correcting, with
    or without the randomizer, 231.0-B-3) or ``tc-bch-detect`` (BCH error correction *off*,
    detection only); the downlink's RS code and interleaving depth (131.0-B-3 §4; the TM frame
    length is then I·(k−Q)) and the period of its CLCW reports.
ISL hop (USLP + selective repeat; :mod:`linkstack.hops.isl`):
    RS code and depth (the frame fills one codeblock), SR ``window``, ``initial_rto``,
    ``max_rto`` and the hybrid-ARQ flag ``fec`` — set on both directions alike.

The search is a pattern search over the knobs (each knob's options in order, numbers
ascending): start from the scenario's own settings (always evaluated first); for d = 1, 2, ...
try, knob by knob, the options d steps either side of the best setting so far, and keep a
candidate only if it *strictly* improves the objective; after a pass that improved, start again
at d = 1; an option that improves is followed further in the same direction. So every knob
gets its neighbours tried before any knob gets its far values, which matters with a small
budget. Budget left when no step improves goes to random perturbations of 1–3 knobs of the best
so far. Every candidate is run on the same prompts and the same seeds (common random numbers):
the tuned settings are the best *for those runs* — use ``repeat`` to tune on more seeds.
Coding off on the TM and ISL hops is the option ``tm-uncoded`` (the hop keeps its frame
length). The comparison key is
``(objective, the other statistic, mean)`` rounded to the nanosecond (the simulator's unit), so
a tie never replaces the incumbent: the result is the defaults unless something beats them, and
it is never worse than the defaults on the evaluated runs.

In parallel (a :class:`~linkstack.sims.distributed.Runner` with several workers) the search is
the same: it lists the candidates it would try next if none of them improved, evaluates them
together, and replays its serial logic on the results; candidates it did not reach are dropped.
The trials, the budget spent and the tuned settings are those of the serial search.

:func:`tuned_scenario_text` writes the scenario file with the channel conditions and the best
settings applied, as TOML (a small exact writer, checked by reading it back with ``tomllib``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linkstack.arq.params import ARQ_PARAMS
from linkstack.codecs.chain import CodingChain
from linkstack.errors import ConfigError
from linkstack.payload.backend import ModelBackend
from linkstack.sims.distributed import Runner, SerialRunner
from linkstack.sims.memo import MemoBackend
from linkstack.sims.scenario import Scenario, apply_overrides, parse_scenario
from linkstack.sims.sweep import (
    Evaluation,
    RunFailed,
    Stats,
    evaluate_many,
    expand_sets,
    prepare,
    read_scenario_source,
)
from linkstack.sims.topology import plan_path

__all__ = [
    "Knob",
    "Option",
    "Trial",
    "TuneResult",
    "dump_toml",
    "search_space",
    "toml_value",
    "tune",
    "tuned_scenario_text",
]

OBJECTIVES = ("p95", "median")

# Candidate values. Timers in seconds. The scenario's own value is always added.
T1_VALUES = (0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0)
TRANSMISSION_LIMITS = (1, 2, 3, 5, 10)
WINDOW_WIDTHS = (1, 2, 4, 10, 20, 50, 100)
RECOVERY_WAITS = (0.1, 0.25, 0.5, 1.0, 2.0)
CLCW_INTERVALS = (0.1, 0.25, 0.5, 1.0, 2.0)
TC_FRAME_LENGTHS = (128, 256, 512, 1024)
TC_CODES = ("tc-bch", "tc-bch-rand", "tc-bch-detect")
TM_CODES = (*(f"tm-rs-255-{k}-i{i}" for k in (223, 239) for i in (1, 2, 4, 5, 8)),
            "tm-uncoded")  # coding off: ASM + randomizer, the frame length stays as it is
SR_WINDOWS = (16, 64, 256, 1024)
SR_INITIAL_RTOS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
SR_MAX_RTOS = (0.25, 0.5, 1.0, 2.0, 5.0)

# The stack's defaults where a scenario leaves a setting out (linkstack.sims.roundtrip).
# the settings a hop runs with when its scenario leaves them out (linkstack.arq.params)
_DEFAULTS = {name: spec.default for name, spec in ARQ_PARAMS.items()}


# --------------------------------------------------------------------------------------------
# Search space


@dataclass(frozen=True)
class Option:
    """One value of a knob: its label and the scenario keys it sets."""

    label: str
    settings: tuple[tuple[str, Any], ...]

    def overrides(self) -> list[str]:
        return [f"{k}={toml_value(v)}" for k, v in self.settings]


@dataclass(frozen=True)
class Knob:
    """One protocol setting: its options and which of them the scenario uses."""

    name: str
    options: tuple[Option, ...]
    default: int

    def index(self, label: str) -> int:
        for i, o in enumerate(self.options):
            if o.label == label:
                return i
        raise KeyError(label)


def _label(value: Any) -> str:
    return toml_value(value).strip('"')


def _knob(name: str, keys: Sequence[str], values: Sequence[Any], current: Any,
          extra: Callable[[Any], Sequence[tuple[str, Any]]] | None = None) -> Knob:
    """A knob setting ``keys`` to each of ``values`` (plus ``current``, the default)."""
    vals = list(dict.fromkeys([*values, current]))
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        vals.sort()
    options = []
    for v in vals:
        settings = [(k, v) for k in keys]
        if extra is not None:
            settings.extend(extra(v))
        options.append(Option(_label(v), tuple(settings)))
    return Knob(name, tuple(options), vals.index(current))


def _frame_length_of(code: str) -> int | None:
    try:
        return CodingChain.from_name(code).frame_length
    except ConfigError:
        return None


def search_space(scenario: Scenario) -> list[Knob]:
    """The knobs of ``scenario``'s path (see the module docstring), most influential first."""
    timers: list[Knob] = []
    shape: list[Knob] = []
    for hop in plan_path(scenario, scenario.run.compute):
        fwd, back = hop.forward, hop.back
        up = f"links.{fwd.name}.stack"
        if hop.kind == "rf":
            params = {**_DEFAULTS, **fwd.stack.arq_params}
            down = f"links.{back.name}.stack"
            timers += [
                _knob(f"{fwd.name}.t1_initial", [f"{up}.arq_params.t1_initial"], T1_VALUES,
                      params["t1_initial"]),
                _knob(f"{fwd.name}.recovery_wait", [f"{up}.arq_params.recovery_wait"],
                      RECOVERY_WAITS, params["recovery_wait"]),
                _knob(f"{fwd.name}.transmission_limit",
                      [f"{up}.arq_params.transmission_limit"], TRANSMISSION_LIMITS,
                      params["transmission_limit"]),
            ]
            shape += [
                _knob(f"{fwd.name}.coding", [f"{up}.coding"], TC_CODES,
                      fwd.stack.coding or "tc-bch-rand"),
                _knob(f"{fwd.name}.frame_length", [f"{up}.frame_length"], TC_FRAME_LENGTHS,
                      fwd.stack.frame_length or 1024),
                _knob(f"{fwd.name}.window_width", [f"{up}.arq_params.window_width"],
                      WINDOW_WIDTHS, params["window_width"]),
                _knob(f"{back.name}.coding", [f"{down}.coding"], TM_CODES,
                      back.stack.coding or "tm-rs-255-223-i1",
                      extra=lambda c, d=down: _frame_length_setting(d, c)),
                _knob(f"{back.name}.clcw_interval", [f"{down}.arq_params.clcw_interval"],
                      CLCW_INTERVALS,
                      {**_DEFAULTS, **back.stack.arq_params}["clcw_interval"]),
            ]
        else:
            params = {**_DEFAULTS, **fwd.stack.arq_params}
            both = [up, f"links.{back.name}.stack"]
            name = f"{fwd.name}+{back.name}"
            timers += [
                _knob(f"{name}.initial_rto", [f"{s}.arq_params.initial_rto" for s in both],
                      SR_INITIAL_RTOS, params["initial_rto"]),
                _knob(f"{name}.max_rto", [f"{s}.arq_params.max_rto" for s in both],
                      SR_MAX_RTOS, params["max_rto"]),
            ]
            shape += [
                _knob(f"{name}.fec", [f"{s}.arq_params.fec" for s in both], (True, False),
                      bool(params["fec"])),
                _knob(f"{name}.window", [f"{s}.arq_params.window" for s in both], SR_WINDOWS,
                      params["window"]),
                _knob(f"{name}.coding", [f"{s}.coding" for s in both], TM_CODES,
                      fwd.stack.coding or "tm-rs-255-223-i5",
                      extra=lambda c, b=both: [kv for s in b
                                               for kv in _frame_length_setting(s, c)]),
            ]
    return timers + shape


def _frame_length_setting(stack_key: str, code: str) -> list[tuple[str, Any]]:
    """Keep ``stack.frame_length`` equal to the codeblock's frame length (the TM and ISL hops
    take the frame length from the code; the scenario's key documents it)."""
    length = _frame_length_of(code)
    return [] if length is None else [(f"{stack_key}.frame_length", length)]


# --------------------------------------------------------------------------------------------
# The search


@dataclass
class Trial:
    """One evaluated (or rejected) candidate."""

    number: int
    assignment: dict[str, str]
    evaluation: Evaluation | None
    error: str | None = None
    accepted: bool = False


@dataclass
class TuneResult:
    scenario: str
    objective: str
    knobs: list[Knob]
    conditions: tuple[str, ...]
    default: Evaluation
    best: Evaluation
    best_assignment: dict[str, int]
    trials: list[Trial] = field(default_factory=list)
    budget: int = 0

    @property
    def default_value(self) -> float:
        return self.default.stats.objective(self.objective)

    @property
    def best_value(self) -> float:
        return self.best.stats.objective(self.objective)

    @property
    def improvement(self) -> float:
        """Fraction of the default objective saved by the tuned settings (>= 0)."""
        d = self.default_value
        return (d - self.best_value) / d if d > 0 else 0.0

    def changed(self) -> dict[str, tuple[str, str]]:
        """Knob -> (default label, tuned label), for the knobs the tuning changed."""
        out = {}
        for knob in self.knobs:
            i = self.best_assignment[knob.name]
            if i != knob.default:
                out[knob.name] = (knob.options[knob.default].label, knob.options[i].label)
        return out

    def best_overrides(self) -> list[str]:
        """The ``--set`` overrides of the changed knobs (all their keys)."""
        by_name = {k.name: k for k in self.knobs}
        return [o for name in self.changed()
                for o in by_name[name].options[self.best_assignment[name]].overrides()]

    @property
    def evaluations(self) -> int:
        return sum(t.evaluation is not None for t in self.trials)


def _rank(stats: Stats, objective: str) -> tuple[float, float, float]:
    other = "median" if objective == "p95" else "p95"
    return (round(stats.objective(objective), 9), round(stats.objective(other), 9),
            round(stats.mean_total_s, 9))


def tune(source: str | Path | Mapping[str, Any], backend: ModelBackend, *,
         sets: Sequence[str] = (), objective: str = "p95", budget: int = 40,
         prompts: Sequence[str] | None = None, n_prompts: int | None = None, repeat: int = 1,
         knobs: Sequence[Knob] | None = None, search_seed: int = 0,
         on_trial: Callable[[Trial, int], None] | None = None, runner: Runner | None = None,
         lookahead: int | None = None) -> TuneResult:
    """Search the protocol settings of ``source`` under the conditions ``sets`` (e.g. the BER
    of every link: ``ber=1e-3``, the keys of :func:`~linkstack.sims.sweep.expand_sets`) for
    the lowest ``objective`` (``p95`` or ``median`` total latency) within ``budget``
    evaluations (each: ``repeat`` runs of the prompts). ``on_trial(trial, budget)`` is called
    after every candidate, in the search's order.

    The runs go to ``runner`` (default: here, one after the other). With a parallel runner the
    search looks ahead: it evaluates, in one batch, the next ``lookahead`` candidates (default:
    twice the runner's parallelism) it would try if none of them improved, then replays its
    serial logic on the results; a candidate it did not reach is not counted (nor reported)
    and one reached without an evaluation starts the next batch. The trials, the budget spent
    and the result are those of the serial search."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"{objective!r} is not one of {', '.join(OBJECTIVES)}",
                          key="objective")
    if budget < 1:
        raise ConfigError(f"{budget} must be >= 1", key="budget")
    raw = (copy.deepcopy(dict(source)) if isinstance(source, Mapping)
           else read_scenario_source(source))
    sets = expand_sets(raw, sets)
    base = apply_overrides(raw, sets)
    scenario = prepare(base, ())
    knob_list = list(knobs) if knobs is not None else search_space(scenario)
    names = [k.name for k in knob_list]
    if len(set(names)) != len(names):
        raise ConfigError("two knobs have the same name", key="knobs")
    memo = backend if isinstance(backend, MemoBackend) else MemoBackend(backend)
    runner = runner or SerialRunner()
    ahead = lookahead or (1 if runner.parallelism <= 1 else 2 * runner.parallelism)
    cache: dict[tuple[int, ...], Evaluation | str] = {}
    reported = 0
    while True:
        search = _Search(knob_list, objective, budget, search_seed, cache, ahead)
        search.run()
        if on_trial is not None:
            for trial in search.trials[reported:search.confirmed]:
                on_trial(trial, budget)
        reported = search.confirmed
        if not search.wanted:
            break
        settings = [_overrides_of(knob_list, a) for a in search.wanted]
        batch = evaluate_many(base, settings, memo, prompts=prompts, n_prompts=n_prompts,
                              repeat=repeat, runner=runner)
        for assign, ev in zip(search.wanted, batch, strict=True):
            if isinstance(ev, RunFailed) and not ev.linkstack_error:
                raise ev  # a bug or a lost worker, not a setting the stack refuses
            cache[assign] = ev if isinstance(ev, Evaluation) else str(ev)
    assert search.first is not None and search.best_eval is not None
    return TuneResult(scenario.name, objective, knob_list, tuple(sets), search.first,
                      search.best_eval, dict(zip(names, search.best, strict=True)),
                      search.trials, budget)


def _overrides_of(knob_list: Sequence[Knob], assign: tuple[int, ...]) -> list[str]:
    return [o for knob, i in zip(knob_list, assign, strict=True) if i != knob.default
            for o in knob.options[i].overrides()]


class _Ahead(Exception):
    """The search has listed enough candidates to evaluate."""


_UNKNOWN = object()
"""A candidate not evaluated yet: taken as valid and not better, to look further ahead."""


class _Search:
    """One pass of the pattern search (module docstring) over the evaluations in ``cache``.

    A candidate missing from the cache is added to ``wanted`` and taken as valid but not
    better, so that the search goes on listing the candidates it would try next, until
    ``ahead`` are wanted. ``trials[:confirmed]`` are the serial search's own (every one before
    the first missing candidate); with nothing wanted the search is complete.
    """

    def __init__(self, knobs: Sequence[Knob], objective: str, budget: int, search_seed: int,
                 cache: Mapping[tuple[int, ...], Evaluation | str], ahead: int) -> None:
        self.knobs = list(knobs)
        self.objective = objective
        self.budget = budget
        self.search_seed = search_seed
        self.cache = cache
        self.ahead = max(1, ahead)
        self.trials: list[Trial] = []
        self.wanted: list[tuple[int, ...]] = []
        self._confirmed: int | None = None
        self.first: Evaluation | None = None
        self.best: tuple[int, ...] = tuple(k.default for k in self.knobs)
        self.best_eval: Evaluation | None = None

    @property
    def confirmed(self) -> int:
        return len(self.trials) if self._confirmed is None else self._confirmed

    def _lookup(self, assign: tuple[int, ...]) -> Evaluation | str | object:
        if assign in self.cache:
            return self.cache[assign]
        if self._confirmed is None:
            self._confirmed = len(self.trials)
        self.wanted.append(assign)
        if len(self.wanted) >= self.ahead:
            raise _Ahead
        return _UNKNOWN

    def run(self) -> None:
        with contextlib.suppress(_Ahead):
            self._run()

    def _run(self) -> None:
        knob_list, objective, budget = self.knobs, self.objective, self.budget
        seen: set[tuple[int, ...]] = set()

        def run(assign: tuple[int, ...]) -> Evaluation | object | None:
            labels = {k.name: k.options[i].label for k, i in zip(knob_list, assign, strict=True)}
            got = self._lookup(assign)
            trial = Trial(len(self.trials) + 1, labels,
                          got if isinstance(got, Evaluation) else None,
                          got if isinstance(got, str) else None)
            seen.add(assign)
            self.trials.append(trial)
            return None if isinstance(got, str) else got

        defaults = tuple(k.default for k in knob_list)
        first = run(defaults)
        if first is None:
            raise ConfigError(f"the scenario's own settings do not run: {self.trials[0].error}",
                              key="scenario")
        self.trials[0].accepted = True
        if isinstance(first, Evaluation):
            self.first = self.best_eval = first
        best = defaults
        best_rank = _rank(first.stats, objective) if isinstance(first, Evaluation) else None
        used = 1

        def consider(assign: tuple[int, ...]) -> bool:
            nonlocal best, best_rank, used
            if assign in seen:
                return False
            ev = run(assign)
            if ev is not None:
                used += 1
            better = (isinstance(ev, Evaluation) and best_rank is not None
                      and _rank(ev.stats, objective) < best_rank)
            if better:
                assert isinstance(ev, Evaluation)
                best, best_rank = assign, _rank(ev.stats, objective)
                self.best, self.best_eval = assign, ev
                self.trials[-1].accepted = True
            return better

        # pattern search over the knobs: neighbours d steps away, d growing until a pass improves
        step = 1
        widest = max((len(k.options) for k in knob_list), default=1)
        while used < budget and step < widest:
            improved = False
            for ki, knob in enumerate(knob_list):
                for direction in (-1, 1):
                    i = best[ki] + direction * step
                    # an improvement is followed further the same way, one option at a time
                    while used < budget and 0 <= i < len(knob.options) and \
                            consider((*best[:ki], i, *best[ki + 1:])):
                        improved = True
                        i += direction
            step = 1 if improved else step + 1
        # random perturbations of the best with what is left
        rng = random.Random(self.search_seed)
        attempts = 0
        while used < budget and attempts < 50 * budget:
            attempts += 1
            cand = list(best)
            for ki in rng.sample(range(len(knob_list)), k=min(len(knob_list), rng.randint(1, 3))):
                choices = [i for i in range(len(knob_list[ki].options)) if i != cand[ki]]
                if choices:
                    cand[ki] = rng.choice(choices)
            consider(tuple(cand))


# --------------------------------------------------------------------------------------------
# Writing the tuned scenario


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: Any) -> str:
    """``value`` as a TOML literal (str, int, float, bool, list, dict)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _basic_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write a {type(value).__name__} as TOML", key="value")


def _basic_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, plus DEL, which TOML also forbids raw."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _basic_string(key)


def dump_toml(data: Mapping[str, Any]) -> str:
    """``data`` as a TOML document (tables as ``[a.b]`` headers; lists inline); checked by
    reading it back."""
    lines: list[str] = []

    def emit(table: Mapping[str, Any], path: list[str]) -> None:
        plain = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
        subs = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
        if path and (plain or not subs):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        for k, v in plain:
            lines.append(f"{_key(k)} = {toml_value(v)}")
        for k, v in subs:
            emit(v, [*path, k])

    emit(data, [])
    text = "\n".join(lines) + "\n"
    if tomllib.loads(text) != _plain(data):
        raise ConfigError("the TOML writer did not round-trip", key="toml")
    return text


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def tuned_scenario_text(source: str | Path | Mapping[str, Any], result: TuneResult) -> str:
    """The scenario file: ``source`` with the conditions and the tuned settings applied,
    named ``<name>-tuned``, headed by comments saying how it was obtained."""
    raw = (copy.deepcopy(dict(source)) if isinstance(source, Mapping)
           else read_scenario_source(source))
    data = apply_overrides(raw, [*result.conditions, *result.best_overrides()])
    meta = data.setdefault("scenario", {})
    name = meta.get("name", "unnamed")
    meta["name"] = f"{name}-tuned"
    o = result.objective
    meta["description"] = (f"{meta.get('description', name)} — protocol settings tuned by "
                           f"'linkstack tune' for the {o} latency")
    parse_scenario(data)  # what we write must load
    d, b = result.default.stats, result.best.stats
    src = source if not isinstance(source, Mapping) else "(a scenario dict)"
    header = [
        f"# Tuned by `linkstack tune` from {src}: objective {o} of the total latency,",
        f"# {result.evaluations} evaluations of budget {result.budget}, "
        f"{d.prompts} prompts each (same prompts and seeds for every candidate).",
        "# Channel conditions applied: " + (", ".join(result.conditions) or "none"),
        f"# defaults: median {d.median_total_s:.6f} s, p95 {d.p95_total_s:.6f} s; "
        f"tuned: median {b.median_total_s:.6f} s, p95 {b.p95_total_s:.6f} s "
        f"({100 * result.improvement:.2f} % less {o}).",
    ]
    changed = result.changed()
    if changed:
        header.append("# Settings changed (default -> tuned):")
        header += [f"#   {k}: {a} -> {z}" for k, (a, z) in changed.items()]
    else:
        header.append("# Nothing beat the scenario's own settings: they are kept.")
    header.append("# Every candidate saw the same model answers and inference times (memoized "
                  "or recorded): the differences are the protocol's.")
    return "\n".join(header) + "\n\n" + dump_toml(data)
