"""A prompt service over the simulated stack (for the MQTT gateway and other ground apps).

:class:`SimulatedLinkService` implements :class:`linkstack.drivers.service.PromptService`:
every prompt is carried through the whole scenario — Space Packets, frames, coding, COP-1 and
selective repeat over the simulated RF and laser links — to the onboard endpoint and back,
in virtual time (:func:`linkstack.sims.roundtrip.run_roundtrip`), with the given model backend. The
simulation runs in a worker thread, one prompt at a time (the model is not re-entrant), so the
asyncio caller stays responsive. Prompt *n* uses the seed ``scenario.seed + n``: each gets its
own channel realisation, and a restarted service repeats the same sequence.

It streams (``streams``): when the scenario's endpoint streams (``[run] stream_tokens`` /
``stream_interval_s``), ``ask(..., on_partial=...)`` is told the partial results that reached
the ground in the simulation, in order, before the result (their ``elapsed_s`` is virtual
time; the simulation runs faster than real time, so they are reported at once when it ends).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

from linkstack.drivers.service import PartialCallback, PartialUpdate, ServiceResult
from linkstack.errors import LinkstackError
from linkstack.payload.backend import ModelBackend
from linkstack.sims.roundtrip import RunReport, percentile, run_roundtrip
from linkstack.sims.scenario import Scenario


class SimulatedLinkService:
    """Each prompt runs through ``scenario`` in virtual time with ``backend``."""

    def __init__(self, scenario: Scenario, backend: ModelBackend) -> None:
        self.scenario = scenario
        self.backend = backend
        self._lock = threading.Lock()
        self._count = 0
        self._totals: list[float] = []
        self._ratios: list[float] = []
        self._statuses: dict[str, int] = {}
        self._last: RunReport | None = None

    def _run(self, prompt: str, max_tokens: int) -> RunReport:
        with self._lock:
            sc = self.scenario
            sc = dataclasses.replace(
                sc, seed=sc.seed + self._count,
                run=dataclasses.replace(sc.run, max_tokens=max_tokens))
            self._count += 1
            report = run_roundtrip(sc, self.backend, prompts=[prompt])
            self._last = report
            return report

    streams = True

    async def ask(self, request_id: str, prompt: str, max_tokens: int, *,
                  on_partial: PartialCallback | None = None) -> ServiceResult:
        """Carry ``prompt`` through the simulated stack; errors come back as results."""
        if not 1 <= max_tokens <= 4096:
            return ServiceResult("malformed", f"max_tokens {max_tokens} outside 1..4096", {}, 0.0)
        try:
            report = await asyncio.to_thread(self._run, prompt, max_tokens)
        except LinkstackError as exc:
            return ServiceResult("backend_error", str(exc), {}, 0.0)
        (p,) = report.prompts
        if on_partial is not None:
            for elapsed, segment, text, so_far in p.partials:
                on_partial(PartialUpdate(segment, text, so_far, elapsed))
        with self._lock:
            self._statuses[p.status] = self._statuses.get(p.status, 0) + 1
            if p.status == "ok":
                self._totals.append(p.total_s)
                self._ratios.append(p.ratio)
        info: dict[str, object] = {
            "bound_s": p.bound_s, "ratio": p.ratio, "ttft_s": p.ttft_s,
            "prompt_tokens": p.prompt_tokens,
            "completion_tokens": p.completion_tokens, "simulated": True,
            "scenario": report.scenario, "request_id": request_id,
        }
        return ServiceResult(p.status, p.answer, dict(p.breakdown), p.total_s, info)

    def status(self) -> dict[str, object]:
        """Link status of the last run (COP-1 state, frame counts, retransmissions per hop
        endpoint) and latency percentiles over the answered prompts (virtual seconds)."""
        with self._lock:
            totals = sorted(self._totals)
            ratios = sorted(self._ratios)
            links: dict[str, Any] = self._last.link_status if self._last else {}
            return {
                "service": "simulated", "scenario": self.scenario.name,
                "prompts": self._count, "statuses": dict(self._statuses),
                "latency_s": {f"p{q}": percentile(totals, q) for q in (50, 90, 99)}
                if totals else {},
                "ratio": {"p50": percentile(ratios, 50)} if ratios else {},
                "links": links,
            }
