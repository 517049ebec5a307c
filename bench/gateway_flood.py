"""A flood of large prompts into the gateway: intake, memory, journal, drain (issue 17).

A real mosquitto, a ``linkstack gateway`` process (``--service sim``: the scenario's stack in
virtual time, or ``local``: no link; recorded answers) with a journal, a paho publisher that
publishes ``--prompts`` prompts of ``--kb`` kB (QoS 1) as fast as it can, and a paho
subscriber on ``result/+``. The flood runs twice, each on a fresh broker
and gateway: with ``--max-queued`` (the default limit, 1000) and with a limit that holds the
whole flood (the baseline: no bound). Printed for each::

    taken <n> prompts in <t> s
    gateway RSS MB: before <a>, peak <b>, after <c>
    journal MB: peak <p>, end <e>
    results: ok <k>, busy <b>, other <o> (<status>: <count>, ...)
    drain: <r> results/s (results other than busy, first publish to last result)

The prompts are longer than the endpoint's 8,192 octets, so they are answered
``prompt_too_long`` (an "other" result) without a model: the figures are the gateway's own.
The simulated service answers about 60 a second, slower than the flood comes, so the limit
bites; the local service answers as fast as the gateway takes them (no ``busy``).
Figures are noisy on a loaded machine: compare the two runs of one invocation.

Run: ``python bench/gateway_flood.py [--service sim|local] [--prompts 3000] [--kb 20]
[--max-queued 1000] [--baseline-queued 100000] [--keep]`` (needs ``mosquitto`` on the PATH
or in /usr/sbin). Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
from gateway_duplicates import Broker

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "sims" / "scenarios" / "gemma-recorded.json"
TOPIC = "linkstack/sat1/prompt"


class Watcher:
    """Subscribes to results and status: each id's first status, the gateway's counters."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.status: dict[str, str] = {}
        self.last_result = 0.0
        self.received = 0  # the gateway's prompts_received, from its status
        self.received_at: float | None = None
        self.online = threading.Event()
        self.target = 0
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flood-watch")
        self.c.on_connect = lambda c, *_: c.subscribe(
            [("linkstack/sat1/result/+", 1), ("linkstack/sat1/status", 1)]
        )
        self.c.on_message = self._message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        doc = json.loads(msg.payload)
        now = time.monotonic()
        with self.lock:
            if msg.topic.endswith("/status"):
                if doc.get("gateway") == "online":
                    self.online.set()
                self.received = max(self.received, int(doc.get("prompts_received", 0)))
                if self.target and self.received >= self.target and self.received_at is None:
                    self.received_at = now
            else:
                self.status.setdefault(str(doc["id"]), doc["status"])
                self.last_result = now

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Sampler(threading.Thread):
    """RSS of the gateway process and size of its journal, every 20 ms."""

    def __init__(self, pid: int, journal: Path) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.journal = journal
        self.peak_rss = 0
        self.peak_journal = 0
        self.stop = threading.Event()

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def journal_size(self) -> int:
        try:
            return self.journal.stat().st_size
        except FileNotFoundError:
            return 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self.rss())
            except psutil.Error:
                return
            self.peak_journal = max(self.peak_journal, self.journal_size())
            time.sleep(0.02)


def flood(
    n: int, kb: int, max_queued: int, timeout_s: float, service: str, keep: bool
) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="gw-flood-"))
    journal = folder / "journal.jsonl"
    broker = Broker(folder)
    if keep:  # the broker's log and the gateway's stderr are kept in the folder
        conf = folder / "m.conf"
        conf.write_text(
            conf.read_text().replace(
                "log_dest none", f"log_dest file {folder}/broker.log\nlog_type all"
            )
        )
    broker.start()
    watch = Watcher(broker.port)
    # fmt: off
    gw = subprocess.Popen(
        [sys.executable, "-m", "linkstack", "gateway", "--broker",
         f"mqtt://127.0.0.1:{broker.port}", "--service", service,
         "--backend", f"recorded:{RECORDING}", "--journal", str(journal),
         "--max-queued", str(max_queued), "--status-interval", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "gateway.log").open("wb") if keep else subprocess.DEVNULL,
    )
    # fmt: on
    try:
        if not watch.online.wait(60):
            raise RuntimeError("the gateway did not come online")
        time.sleep(1.0)  # settled
        sampler = Sampler(gw.pid, journal)
        before = sampler.rss()
        sampler.start()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flood-pub")
        pub.max_queued_messages_set(0)
        pub.max_inflight_messages_set(0xFFFF)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        filler = "x" * (kb * 1000)
        with watch.lock:
            watch.target = n
        t0 = time.monotonic()
        infos = [
            pub.publish(TOPIC, json.dumps({"id": f"p{i}", "prompt": f"{i} {filler}"}), qos=1)
            for i in range(n)
        ]
        for info in infos:
            info.wait_for_publish(timeout_s)
        deadline = t0 + timeout_s
        while time.monotonic() < deadline:
            with watch.lock:
                if len(watch.status) >= n:
                    break
            time.sleep(0.1)
        time.sleep(1.0)  # settled
        after = sampler.rss()
        sampler.stop.set()
        sampler.join()
        pub.loop_stop()
        with watch.lock:
            statuses = Counter(watch.status.values())
            taken_s = None if watch.received_at is None else watch.received_at - t0
            last = watch.last_result
        end_journal = sampler.journal_size()
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(timeout=30)
        watch.close()
        broker.stop()
        if keep:
            print(f"  (logs kept in {folder})")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    answered = sum(v for k, v in statuses.items() if k != "busy")
    return {
        "max_queued": max_queued, "taken_s": taken_s, "rss": (before, sampler.peak_rss, after),
        "journal": (sampler.peak_journal, end_journal), "statuses": statuses,
        "drain": answered / (last - t0) if last > t0 and answered else 0.0,
    }  # fmt: skip


def report(name: str, n: int, r: dict[str, object]) -> None:
    mb = 1e6
    before, peak, after = r["rss"]  # type: ignore[misc]
    jpeak, jend = r["journal"]  # type: ignore[misc]
    statuses: Counter[str] = r["statuses"]  # type: ignore[assignment]
    taken = r["taken_s"]
    other = {k: v for k, v in statuses.items() if k not in ("ok", "busy")}
    print(f"{name} (--max-queued {r['max_queued']}):")
    print(f"  taken {n} prompts in " + ("(not all)" if taken is None else f"{taken:.2f} s"))
    print(
        f"  gateway RSS MB: before {before / mb:.0f}, peak {peak / mb:.0f}, after {after / mb:.0f}"
    )
    print(f"  journal MB: peak {jpeak / mb:.1f}, end {jend / mb:.1f}")
    print(
        f"  results: ok {statuses.get('ok', 0)}, busy {statuses.get('busy', 0)}, "
        f"other {sum(other.values())} ({', '.join(f'{k}: {v}' for k, v in other.items())}); "
        f"missing {n - sum(statuses.values())}"
    )
    print(f"  drain: {r['drain']:.0f} results/s (other than busy)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=3000)
    ap.add_argument("--kb", type=int, default=20, help="prompt size, kB")
    ap.add_argument("--max-queued", type=int, default=1000, help="the bounded run's limit")
    ap.add_argument("--baseline-queued", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--keep", action="store_true", help="keep the broker and gateway logs")
    ap.add_argument("--service", default="sim", choices=("sim", "local"))
    args = ap.parse_args()
    print(f"{args.prompts} prompts of {args.kb} kB")
    for name, limit in (("bounded", args.max_queued), ("baseline", args.baseline_queued)):
        report(
            name,
            args.prompts,
            flood(args.prompts, args.kb, limit, args.timeout, args.service, args.keep),
        )


if __name__ == "__main__":
    main()
