"""The simulator answers what the onboard endpoint refuses, as the real-time services do.

Issue 17: a prompt longer than the endpoint takes (8,192 octets) got ``prompt_too_long`` from
the UDP satellite and the in-process service, but timed out after 900 virtual seconds in the
simulator, which dropped the endpoint's immediate results. A backend that raised stopped the
whole simulation with a traceback; the drivers answer ``backend_error`` and go on.
"""

from __future__ import annotations

import asyncio
import math

from linkstack.drivers.service import LocalEndpointService
from linkstack.payload.backend import FinishReason, Generation, RecordedBackend
from linkstack.payload.endpoint import EndpointConfig
from linkstack.sims.roundtrip import run_roundtrip
from linkstack.sims.scenario import load_scenario

LIMIT = EndpointConfig().max_prompt_octets
ANSWER = Generation("fine", 3, 1, 0.05, FinishReason.STOP)


def _local(prompt: str, backend: RecordedBackend) -> tuple[str, str]:
    async def main() -> tuple[str, str]:
        service = LocalEndpointService(backend)
        try:
            r = await service.ask("r1", prompt, 16)
        finally:
            await service.aclose()
        return r.status, r.text

    return asyncio.run(main())


def test_a_prompt_over_the_limit_is_prompt_too_long_as_in_the_local_service() -> None:
    backend = RecordedBackend({}, default=ANSWER)
    prompts = ["x" * LIMIT, "x" * (LIMIT + 1), "y" * 20_000]
    report = run_roundtrip(load_scenario("default"), backend, prompts=prompts)
    statuses = [p.status for p in report.prompts]
    assert statuses == ["ok", "prompt_too_long", "prompt_too_long"]
    for p, text in zip(report.prompts[1:], prompts[1:], strict=True):
        assert (p.status, p.answer) == _local(text, backend)
        assert p.answer == f"prompt is {len(text)} octets, at most {LIMIT}"
        # answered over the link, well before the 900 s client timeout
        assert p.total_s < report.prompts[0].total_s
        assert math.isclose(sum(p.breakdown.values()), p.total_s, abs_tol=1e-9)
    assert len(backend.calls) == 1  # the model only saw the prompt that fits


def test_a_backend_that_fails_is_a_backend_error_and_the_run_goes_on() -> None:
    backend = RecordedBackend({"known": ANSWER})  # no default: others raise KeyError
    report = run_roundtrip(load_scenario("default"), backend, prompts=["unknown", "known"])
    first, second = report.prompts
    assert first.status == "backend_error" and "no recorded generation" in first.answer
    assert (first.status, first.answer) == _local("unknown", backend)
    assert second.status == "ok" and second.answer == "fine"
