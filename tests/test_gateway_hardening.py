"""The gateway against bad and hostile traffic (issue 17), with a real mosquitto broker.

- A deeply nested JSON prompt crashed the gateway (RecursionError, exit 1) and the prompts
  behind it were lost; so did a JSON integer of 5,000 digits (ValueError).
- A new prompt reusing an id got the old prompt's cached result.
- A flood of prompts was all taken into memory.
- A broker refusing connections was retried for ever without a word.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_gateway import (
    Mosquitto,
    PahoClient,
    broker,
    free_port,
    needs_broker,
    recorded,
    results,
    until,
    with_gateway,
)

from linkstack.drivers.service import LocalEndpointService, ServiceResult
from linkstack.errors import ConfigError
from linkstack.gateway.mqtt import Gateway, GatewayConfig, MalformedPrompt, parse_prompt

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "sims" / "scenarios" / "gemma-recorded.json"
TOPIC = "linkstack/sat1/prompt"

__all__ = ["broker"]  # the real-mosquitto fixture of test_gateway, used by name below


UNREADABLE = [
    b"[" * 100_000,  # nested far beyond the recursion limit
    b'{"id": "n1", "prompt": "x", "extra": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"id": 1' + b"0" * 5000 + b', "prompt": "x"}',  # an int() longer than Python converts
]


@pytest.mark.parametrize("payload", UNREADABLE)
def test_unreadable_json_is_malformed_not_an_exception(payload: bytes) -> None:
    with pytest.raises(MalformedPrompt) as info:
        parse_prompt(payload)
    assert info.value.reason.startswith("not readable") and info.value.request_id is None


@needs_broker
@pytest.mark.broker
def test_unreadable_prompts_get_error_results_and_the_gateway_goes_on(broker: Mosquitto) -> None:
    service = LocalEndpointService(recorded())
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")

    async def body(gw: Gateway) -> None:
        for payload in UNREADABLE:
            pub.publish(TOPIC, payload)
        for i in range(5):
            pub.publish(TOPIC, json.dumps({"id": f"after-{i}", "prompt": f"prompt number {i}"}))
        await until(
            lambda: (
                len(results(sub).get("_", [])) == len(UNREADABLE)
                and all(f"after-{i}" in results(sub) for i in range(5))
            ),
            what="the error results and the five answers",
        )

    try:
        gw = asyncio.run(with_gateway(broker, service, body))
        got = results(sub)
        assert [d["status"] for d in got["_"]] == ["malformed"] * len(UNREADABLE)
        assert all(d["text"].startswith("not readable") for d in got["_"])
        assert [got[f"after-{i}"][0]["text"] for i in range(5)] == [
            f"answer number {i}" for i in range(5)
        ]
        assert gw.stats.malformed == len(UNREADABLE)
    finally:
        sub.close()
        pub.close()


@needs_broker
@pytest.mark.broker
def test_an_id_names_one_prompt(broker: Mosquitto) -> None:
    backend = recorded()
    service = LocalEndpointService(backend)
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")
    first = json.dumps({"id": "same", "prompt": "prompt number 1"})

    async def body(gw: Gateway) -> None:
        pub.publish(TOPIC, first)
        await until(lambda: len(results(sub).get("same", [])) == 1, what="the first result")
        pub.publish(TOPIC, json.dumps({"id": "same", "prompt": "prompt number 2"}))
        pub.publish(
            TOPIC, json.dumps({"id": "same", "prompt": "prompt number 1", "max_tokens": 5})
        )  # another max_tokens: another one
        pub.publish(TOPIC, first)  # the same prompt again: the cached result
        await until(lambda: len(results(sub).get("same", [])) == 4, what="four results")

    try:
        gw = asyncio.run(with_gateway(broker, service, body))
        docs = results(sub)["same"]
        assert [d["status"] for d in docs] == ["ok", "duplicate_id", "duplicate_id", "ok"]
        assert docs[3] == docs[0] and docs[0]["text"] == "answer number 1"
        assert "already used by a different prompt" in docs[1]["text"]
        assert [p for p, _ in backend.calls] == ["prompt number 1"]  # run once, never the 2nd
        assert (gw.stats.duplicate_ids, gw.stats.duplicates) == (2, 1)
    finally:
        sub.close()
        pub.close()


class _Held:
    """A service that holds every prompt until released (prompts pile up in the gateway)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[str] = []

    async def ask(self, request_id: str, prompt: str, max_tokens: int) -> ServiceResult:
        self.asked.append(request_id)
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return ServiceResult("ok", f"done {request_id}", {"onboard.inference": 0.0}, 0.0)

    def status(self) -> dict[str, object]:
        return {}


@needs_broker
@pytest.mark.broker
def test_intake_is_bounded_by_max_queued(broker: Mosquitto) -> None:
    service = _Held()
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")

    async def body(gw: Gateway) -> None:
        for i in range(10):
            pub.publish(TOPIC, json.dumps({"id": f"f{i}", "prompt": f"p{i}"}))
        await until(lambda: sum(map(len, results(sub).values())) == 7, what="7 busy results")
        assert len(gw._in_progress) == 3
        service.release.set()
        await until(lambda: sum(map(len, results(sub).values())) == 10, what="all results")
        # a busy prompt is not remembered: sent again later, it is taken
        pub.publish(TOPIC, json.dumps({"id": "f9", "prompt": "p9"}))
        await until(lambda: len(results(sub)["f9"]) == 2, what="f9 again")

    try:
        gw = asyncio.run(with_gateway(broker, service, body, max_queued=3, max_in_flight=1))
        got = results(sub)
        statuses = {k: [d["status"] for d in v] for k, v in got.items()}
        ok = [k for k, v in statuses.items() if v[0] == "ok"]
        assert len(ok) == 3 and sorted(ok) == sorted(service.asked[:3])
        assert sum(v[0] == "busy" for v in statuses.values()) == 7
        assert statuses["f9"][-1] == "ok"
        assert gw.stats.busy == 7
        assert all("max_queued" in got[k][0]["text"] for k, v in statuses.items() if v[0] == "busy")
    finally:
        sub.close()
        pub.close()


class _GatedPublisher(Gateway):
    """Publishes nothing until ``gate`` is set: results wait in the outbox (a broker slow to
    acknowledge them)."""

    gate: asyncio.Event

    async def _publisher(self, client: Any) -> None:
        await self.gate.wait()
        await super()._publisher(client)


@needs_broker
@pytest.mark.broker
def test_max_queued_counts_results_not_yet_acknowledged(
    broker: Mosquitto, tmp_path: Path
) -> None:
    # issue 17, flood: max_queued counted only the prompts at the service; those answered
    # and waiting for the broker to take their result were not counted, yet held in memory and
    # in the journal (6,000 prompts of 20 kB: a 67 MB journal under the default limit, for
    # 1,000 x 20 kB pending); and a duplicate_id result marked the original prompt, still in
    # progress, answered in the journal
    journal = tmp_path / "journal.jsonl"
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/+")
    pub = PahoClient(broker.port, "t-prompts")
    held = _Held()
    pending: list[int] = []

    async def main() -> None:
        gw = _GatedPublisher(LocalEndpointService(recorded()), GatewayConfig(
            port=broker.port, max_queued=3, journal=str(journal)))
        gw.gate = asyncio.Event()
        task = asyncio.get_running_loop().create_task(gw.run())
        try:
            await asyncio.wait_for(gw.connected.wait(), 10)
            for i in range(3):
                pub.publish(TOPIC, json.dumps({"id": f"g{i}", "prompt": f"prompt number {i}"}))
            # answered by the service, their results not yet acknowledged by the broker
            await until(lambda: gw.stats.statuses.get("ok") == 3, what="three answers")
            for i in range(3, 6):
                pub.publish(TOPIC, json.dumps({"id": f"g{i}", "prompt": f"prompt number {i}"}))
            await until(lambda: gw.stats.prompts_received == 6, what="six prompts")
            assert gw.journal is not None
            pending.append(len(gw.journal.pending()))
            gw.gate.set()
            await until(lambda: len(results(sub)) == 6, what="six results")
            pending.append(len(gw.journal.pending()))
        finally:
            task.cancel()
            await asyncio.wait({task}, timeout=15)
            await gw.service.aclose()  # type: ignore[attr-defined]

    async def duplicate() -> None:
        gw = Gateway(held, GatewayConfig(port=broker.port, journal=str(journal)))
        task = asyncio.get_running_loop().create_task(gw.run())
        try:
            await asyncio.wait_for(gw.connected.wait(), 10)
            pub.publish(TOPIC, json.dumps({"id": "d", "prompt": "first"}))
            pub.publish(TOPIC, json.dumps({"id": "d", "prompt": "another"}))
            await until(lambda: gw.stats.results_published >= 1, what="duplicate_id")
            assert gw.journal is not None
            pending.append(len(gw.journal.pending()))
        finally:
            task.cancel()
            await asyncio.wait({task}, timeout=15)

    try:
        asyncio.run(main())
        statuses = sorted(d[0]["status"] for d in results(sub).values())
        assert statuses == ["busy", "busy", "busy", "ok", "ok", "ok"]
        assert {k for k, d in results(sub).items() if d[0]["status"] == "ok"} == {"g0", "g1", "g2"}
        assert pending == [3, 0]
        asyncio.run(duplicate())
        assert results(sub)["d"][0]["status"] == "duplicate_id"
        assert pending[2] == 1  # "first" is still in progress: the journal keeps it
    finally:
        sub.close()
        pub.close()


class _SlowTaking(Gateway):
    """Takes each prompt in 5 ms: a loaded gateway, that prompts come to faster than it takes
    them."""

    def handle_prompt(self, payload: bytes) -> None:
        time.sleep(0.005)
        super().handle_prompt(payload)


@needs_broker
@pytest.mark.broker
def test_every_prompt_acknowledged_was_taken_and_journaled(
    broker: Mosquitto, tmp_path: Path
) -> None:
    # issue 17, flood: the MQTT client acknowledged each prompt as it read it and queued it
    # for the gateway, without limit; the gateway stopping (or the connection dropping when a
    # result's publication timed out) discarded that queue: neither the broker nor the
    # journal had those prompts any more (6,000 prompts of 20 kB: 3,249 lost)
    n = 300
    journal = tmp_path / "journal.jsonl"
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/+")
    pub = PahoClient(broker.port, "t-prompts")
    seen: dict[str, int] = {}

    async def gateway(cls: type[Gateway]) -> tuple[Gateway, asyncio.Task[None]]:
        gw = cls(LocalEndpointService(recorded()),
                 GatewayConfig(port=broker.port, reconnect_max_s=0.5, journal=str(journal)))
        task = asyncio.get_running_loop().create_task(gw.run())
        await asyncio.wait_for(gw.connected.wait(), 10)
        return gw, task

    async def stop(gw: Gateway, task: asyncio.Task[None]) -> None:
        task.cancel()
        await asyncio.wait({task}, timeout=15)
        await gw.service.aclose()  # type: ignore[attr-defined]

    async def main() -> None:
        first, task = await gateway(_SlowTaking)
        infos = [pub.publish(TOPIC, json.dumps({"id": f"s{i}", "prompt": f"p{i}"}))
                 for i in range(n)]
        await until(lambda: all(i.is_published() for i in infos), what="the broker has all")
        await until(lambda: first.stats.prompts_received >= 30, what="taking")
        await stop(first, task)  # mid-flood
        seen["first"] = first.stats.prompts_received
        # the same session and journal: the journal has what was taken, the broker the rest
        second, task = await gateway(Gateway)
        try:
            await until(lambda: len(results(sub)) == n, timeout=60, what=lambda: (
                f"all {n} results; {n - len(results(sub))} missing; first {first.stats}; "
                f"second {second.stats}"))
        finally:
            await stop(second, task)

    try:
        asyncio.run(main())
        assert set(results(sub)) == {f"s{i}" for i in range(n)}
        assert seen["first"] < n  # stopped mid-flood
    finally:
        sub.close()
        pub.close()


def test_a_refusing_broker_is_logged_per_attempt_and_connect_timeout_ends_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there: every connection is refused

    async def main() -> None:
        gw = Gateway(
            _Held(),
            GatewayConfig(
                port=port, reconnect_min_s=0.05, reconnect_max_s=0.2, connect_timeout_s=1.0
            ),
        )
        await asyncio.wait_for(gw.run(), 10)

    with (
        caplog.at_level(logging.WARNING, logger="linkstack.gateway.mqtt"),
        pytest.raises(ConfigError) as info,
    ):
        asyncio.run(main())
    assert info.value.key == "connect_timeout"
    assert f"127.0.0.1:{port}" in info.value.reason and "refused" in info.value.reason
    attempts = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert len(attempts) >= 3
    assert attempts[0].startswith("broker connection attempt 1:")
    assert all("Connection refused" in a and "next attempt in" in a for a in attempts)


def test_the_cli_connect_timeout_is_one_line_exit_2() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "linkstack",
            "gateway",
            "--broker",
            f"mqtt://127.0.0.1:{free_port()}",
            "--backend",
            f"recorded:{RECORDED}",
            "--connect-timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: --connect-timeout: no connection")
    assert "broker connection attempt 1" in proc.stderr


# -- a gateway killed after the link answered and before the broker had the result ------------


def test_the_journal_keeps_a_result_until_the_broker_has_it(tmp_path: Path) -> None:
    from linkstack.gateway.journal import PromptJournal

    path = tmp_path / "journal.jsonl"
    j = PromptJournal(path)
    prompts = {k: json.dumps({"id": k, "prompt": f"prompt {k}"}).encode() for k in "abc"}
    for key, prompt in prompts.items():
        j.taken(key, prompt)
    j.result("a", b'{"id": "a", "status": "ok", "text": "\\u00e9t\\u00e9"}')
    j.result("b", b'{"id": "b", "status": "ok", "text": "B"}')
    j.answered("b")
    j.result("zz", b"{}")  # never taken: not kept
    again = PromptJournal(path)  # (a crash here: the next process reads this)
    assert again.pending_results() == [
        (prompts["a"], b'{"id": "a", "status": "ok", "text": "\\u00e9t\\u00e9"}'),
        (prompts["c"], None),
    ]
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3  # rewritten: a, its result, c
    again.answered("a")
    assert PromptJournal(path).pending_results() == [(prompts["c"], None)]


def test_a_journaled_result_is_published_again_as_it_was(
    broker: Mosquitto, tmp_path: Path
) -> None:
    from linkstack.gateway.journal import PromptJournal

    journal = tmp_path / "journal.jsonl"
    earlier = PromptJournal(journal)  # what a gateway killed -9 left behind
    earlier.taken("k1", json.dumps({"id": "k1", "prompt": "prompt number 1"}).encode())
    stored = json.dumps(
        {
            "id": "k1",
            "status": "ok",
            "text": "answer number 1",
            "breakdown": {"onboard.inference": 0.25},
            "total_s": 0.25,
        }
    ).encode()
    earlier.result("k1", stored)
    earlier.taken("k2", json.dumps({"id": "k2", "prompt": "prompt number 2"}).encode())
    backend = recorded()
    service = LocalEndpointService(backend)
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")

    async def body(gw: Gateway) -> None:
        await until(lambda: {"k1", "k2"} <= set(results(sub)), what="both results")

    try:
        gw = asyncio.run(with_gateway(broker, service, body, journal=str(journal)))
        got = {
            r.topic.rsplit("/", 1)[1]: r.payload for r in sub.snapshot() if "/result/" in r.topic
        }
        assert got["k1"] == stored  # the same message, not a second run of the prompt
        assert [p for p, _ in backend.calls] == ["prompt number 2"]
        assert gw.stats.replayed == 2
        assert PromptJournal(journal).pending_results() == []  # both answered
    finally:
        sub.close()
