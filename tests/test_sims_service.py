"""The simulated prompt service: prompts through the whole simulated stack, from asyncio."""

from __future__ import annotations

import asyncio
import json

import pytest

from linkstack.drivers.service import PromptService
from linkstack.payload.backend import Generation, RecordedBackend
from linkstack.sims.scenario import load_scenario
from linkstack.sims.simulated_service import SimulatedLinkService

ANSWER = Generation("Paris is the capital of France.", 12, 8, 0.5)


def test_prompts_cross_the_simulated_stack() -> None:
    service = SimulatedLinkService(load_scenario("default"),
                                   RecordedBackend({}, default=ANSWER))
    assert isinstance(service, PromptService)

    async def main() -> list:
        return [await service.ask(str(i), "What is the capital of France?", 16)
                for i in range(3)]

    results = asyncio.run(main())
    for r in results:
        assert r.status == "ok" and r.text == ANSWER.text
        assert sum(r.breakdown.values()) == pytest.approx(r.total_s, abs=1e-9)
        assert r.breakdown["onboard.inference"] == ANSWER.inference_s
        assert r.info["ratio"] >= 1.0
    status = service.status()
    json.dumps(status)  # JSON-able
    assert status["prompts"] == 3 and status["statuses"] == {"ok": 3}
    assert status["links"]["rf-ground"]["cop1_state"] == "S1"
    assert status["latency_s"]["p50"] > 0.5


def test_bad_max_tokens_is_an_error_result() -> None:
    service = SimulatedLinkService(load_scenario("default"),
                                   RecordedBackend({}, default=ANSWER))
    r = asyncio.run(service.ask("x", "hi", 0))
    assert r.status == "malformed" and "max_tokens" in r.text
