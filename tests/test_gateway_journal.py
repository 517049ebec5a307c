"""The gateway's prompt journal (linkstack/gateway/journal.py), and a gateway process killed
with prompts in hand: restarted on the same journal, it answers them (real mosquitto broker,
real ``linkstack gateway`` processes)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_gateway import MOSQUITTO, Mosquitto, PahoClient, free_port, needs_broker

from linkstack.errors import ConfigError
from linkstack.gateway.journal import COMPACT_BYTES, PromptJournal

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "sims" / "scenarios" / "gemma-recorded.json"


def test_pending_prompts_survive_reopening_and_the_file_is_compacted(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    j = PromptJournal(path)
    for i in range(4):
        j.taken(f"id{i}", json.dumps({"id": f"id{i}", "prompt": f"p{i} é"}).encode())
    j.taken("id1", b'{"id": "id1", "prompt": "again"}')  # taken once only
    j.answered("id1")
    j.answered("id3")
    j.answered("never-taken")
    assert len(path.read_text().splitlines()) == 6
    again = PromptJournal(path)
    assert [json.loads(p)["id"] for p in again.pending()] == ["id0", "id2"]
    assert json.loads(again.pending()[0])["prompt"] == "p0 é"
    assert len(path.read_text().splitlines()) == 2  # rewritten with the pending ones
    assert again.skipped == 0


def _prompt(key: str, size: int = 20_000) -> bytes:
    return json.dumps({"id": key, "prompt": "x" * size}).encode()


def test_answered_prompts_are_compacted_away_while_running(tmp_path: Path) -> None:
    # issue 17: 3,000 prompts of 20 kB left a 62 MB journal of answered prompts behind them
    path = tmp_path / "journal.jsonl"
    j = PromptJournal(path)
    window = 5  # prompts taken and not answered at any time
    record = len(_prompt("p0000")) + 40  # a taken record, about
    largest = 0
    for i in range(300):  # 6 MB of prompts through the journal
        j.taken(f"p{i:04}", _prompt(f"p{i:04}"))
        if i >= window:
            old = f"p{i - window:04}"
            j.result(old, json.dumps({"id": old, "status": "ok", "text": "y"}).encode())
            j.answered(old)
        assert j.size == path.stat().st_size
        largest = max(largest, j.size)
    assert largest < COMPACT_BYTES + 2 * record
    assert j.compactions >= 4
    again = PromptJournal(path)
    assert [json.loads(p)["id"] for p, _ in again.pending_results()] == [
        f"p{i:04}" for i in range(295, 300)]
    assert again.skipped == 0


KEYS = st.sampled_from(["a", "b", "c", "d"])
OPS = st.lists(st.tuples(st.sampled_from(["taken", "result", "answered"]), KEYS,
                         st.integers(0, 3000)), max_size=40)


@given(ops=OPS)
def test_compaction_keeps_exactly_the_pending_prompts_and_results(ops: list[tuple[str, str, int]],
                                                                  tmp_path_factory: Any) -> None:
    """Whatever the order of records, the journal reopened (from a copy, after every record)
    has the pending prompts, in the order taken, with the results known — compacting at every
    opportunity (``compact_bytes=0``) or never."""
    folder = tmp_path_factory.mktemp("j")
    for compact in (0, 1 << 40):
        path = folder / f"journal{compact}.jsonl"
        j = PromptJournal(path, compact_bytes=compact)
        model: dict[str, tuple[bytes, bytes | None]] = {}
        for op, key, size in ops:
            if op == "taken":
                j.taken(key, _prompt(key, size))
                model.setdefault(key, (_prompt(key, size), None))
            elif op == "result":
                j.result(key, f'{{"id": "{key}", "n": {size}}}'.encode())
                if key in model and model[key][1] is None:
                    model[key] = (model[key][0], f'{{"id": "{key}", "n": {size}}}'.encode())
            else:
                j.answered(key)
                model.pop(key, None)
            assert j.size == path.stat().st_size
            if compact == 0:  # answered records are never the larger part
                live = sum(len(p) + len(r or b"") for p, r in model.values())
                assert j.size <= 2 * (live + 100 * len(model)) + 100
            copy = folder / "copy.jsonl"
            copy.write_bytes(path.read_bytes())
            assert PromptJournal(copy).pending_results() == list(model.values())


def test_the_journal_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"taken": "a", "prompt": "{\\"id\\": \\"a\\", \\"prompt\\": \\"x\\"}"}\n')
    path.chmod(0o644)  # an older journal, readable by everyone
    (tmp_path / "journal.jsonl.tmp").write_text("left by a crash")
    (tmp_path / "journal.jsonl.tmp").chmod(0o644)
    j = PromptJournal(path)
    j.taken("b", b'{"id": "b", "prompt": "y"}')
    assert [json.loads(p)["id"] for p in PromptJournal(path).pending()] == ["a", "b"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_record_cut_by_a_crash_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    j = PromptJournal(path)
    j.taken("a", b'{"id": "a", "prompt": "x"}')
    with path.open("a") as f:
        f.write('{"taken": "b", "prompt": "{\\"id\\": \\"b\\", "\n')  # torn JSON
        f.write('{"something": "else"}\n')
    again = PromptJournal(path)
    assert [json.loads(p)["id"] for p in again.pending()] == ["a"]
    assert again.skipped == 2


def test_an_unusable_journal_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        PromptJournal(tmp_path / "no" / "such" / "folder" / "journal.jsonl")
    assert exc.value.key == "journal"


def _gateway(broker: Mosquitto, journal: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "linkstack", "gateway", "--broker",
         f"mqtt://127.0.0.1:{broker.port}", "--journal", str(journal), *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@needs_broker
@pytest.mark.broker
def test_a_killed_gateway_restarted_on_its_journal_answers_what_it_had_taken(
        tmp_path: Path) -> None:
    assert MOSQUITTO is not None
    broker = Mosquitto(tmp_path)
    broker.start()
    journal = tmp_path / "gateway.jsonl"
    prompts = list(json.loads(RECORDED.read_text())["recordings"])[:3]
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")
    first = second = None
    try:
        # 1. a gateway on an RF link to nobody: it takes the prompts and cannot answer them
        first = _gateway(broker, journal, "--service", "udp",
                         "--peer", f"127.0.0.1:{free_port()}")
        _wait(lambda: journal.exists(), 20, "the first gateway")
        time.sleep(0.5)  # subscribed (the broker would queue the prompts anyway)
        for i, prompt in enumerate(prompts):
            pub.publish("linkstack/sat1/prompt", json.dumps({"id": f"k{i}", "prompt": prompt}))
        _wait(lambda: journal.read_text().count('"taken"') == 3, 20, "three prompts taken")
        first.send_signal(signal.SIGKILL)  # no goodbye, no clean-up
        first.wait(timeout=10)
        assert not [r for r in sub.snapshot() if "/result/" in r.topic]
        # 2. the broker has acknowledged them to the dead gateway: only the journal has them
        second = _gateway(broker, journal, "--service", "sim",
                          "--backend", f"recorded:{RECORDED}")
        def final(r: Any) -> bool:  # a result, not a streamed partial (result/<id>/partial)
            return "/result/" in r.topic and not r.topic.endswith("/partial")

        _wait(lambda: len({r.topic for r in sub.snapshot() if final(r)}) == 3,
              60, "three results")
        docs = {r.doc["id"]: r.doc for r in sub.snapshot() if final(r)}
        recordings = json.loads(RECORDED.read_text())["recordings"]
        for i, prompt in enumerate(prompts):
            assert docs[f"k{i}"]["status"] == "ok"
            assert docs[f"k{i}"]["text"] == recordings[prompt]["text"]
        _wait(lambda: journal.read_text().count('"answered"') == 3, 20, "answers noted")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        sub.close()
        pub.close()
        broker.stop()
