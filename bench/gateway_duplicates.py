"""Gateway results across broker restarts and gateway crashes: lost, repeated, different.

A real mosquitto (persistence on), a ``linkstack gateway --service local`` process (a
recording answers at once, 20 ms per prompt) with a journal, a paho publisher and a paho
subscriber (persistent sessions, QoS 1). While the prompts flow, either the broker is
restarted ``--restarts`` times (``--mode restart``), or the gateway is killed with SIGKILL and
started again on its journal (``--mode kill``). Printed::

    prompts <n>, results for <k> ids, missing <m>
    copies beyond the first: <d> (MQTT at-least-once)
    ids whose copies differ: <x>

"copies beyond the first" counts the repeated result messages a subscriber sees (QoS 1: a
PUBACK lost in a restart or a crash); "ids whose copies differ" counts the ids for which two
copies are not the same octets. A subscriber that keeps the ids it has seen gets each result
once when that is 0 (linkstack.gateway.mqtt, "Duplicates").

Run: ``python bench/gateway_duplicates.py --mode restart|kill [--prompts N] [--restarts K]``
(needs ``mosquitto`` on the PATH or in /usr/sbin). Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from linkstack.payload.backend import FinishReason, Generation, RecordedBackend

TOPIC = "linkstack/sat1/prompt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.proc = folder, free_port(), None
        user = "user root\n" if os.geteuid() == 0 else ""
        (folder / "m.conf").write_text(
            f"{user}listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\n"
            "max_queued_messages 1000000\nlog_dest none\n"
        )
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.cmd = [exe, "-c", str(folder / "m.conf")]

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd)
        for _ in range(500):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
            self.proc = None


class Subscriber:
    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.copies: dict[str, list[bytes]] = {}
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub", clean_session=False
        )
        self.c.reconnect_delay_set(0.05, 0.5)
        # result/+: the results, not the streamed partials (result/<id>/partial)
        self.c.on_connect = lambda c, *_: c.subscribe("linkstack/sat1/result/+", qos=1)
        self.c.on_message = self._message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.copies.setdefault(msg.topic.rsplit("/", 1)[1], []).append(bytes(msg.payload))


def gateway(port: int, recording: Path, journal: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "linkstack",
            "gateway",
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--service",
            "local",
            "--backend",
            f"recorded:{recording}",
            "--journal",
            str(journal),
            "--max-in-flight",
            "4",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=("restart", "kill"), default="restart")
    ap.add_argument("--prompts", type=int, default=600)
    ap.add_argument("--restarts", type=int, default=3)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gw-dup-"))
    answers = {
        f"prompt {i}": Generation(f"answer {i}", 5, 2, 0.02, FinishReason.STOP)
        for i in range(args.prompts)
    }
    recording = folder / "rec.json"
    recording.write_text(RecordedBackend(answers).to_json(), encoding="utf-8")
    broker = Broker(folder)
    broker.start()
    sub = Subscriber(broker.port)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub", clean_session=False)
    pub.reconnect_delay_set(0.05, 0.5)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    gw = gateway(broker.port, recording, folder / "journal.jsonl")
    time.sleep(2.0)  # subscribed
    t0 = time.monotonic()
    per_round = args.prompts // (args.restarts + 1)
    sent = 0
    for round_ in range(args.restarts + 1):
        count = per_round if round_ < args.restarts else args.prompts - sent
        for i in range(sent, sent + count):
            pub.publish(TOPIC, json.dumps({"id": f"p{i}", "prompt": f"prompt {i}"}), qos=1)
        sent += count
        if round_ == args.restarts:
            break
        time.sleep(0.5)  # mid-traffic
        if args.mode == "restart":
            broker.stop()
            time.sleep(0.3)
            broker.start()
        else:
            gw.send_signal(signal.SIGKILL)
            gw.wait()
            gw = gateway(broker.port, recording, folder / "journal.jsonl")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with sub.lock:
            if len(sub.copies) >= args.prompts:
                break
        time.sleep(0.2)
    time.sleep(2.0)  # late copies
    with sub.lock:
        copies = {k: list(v) for k, v in sub.copies.items()}
    gw.send_signal(signal.SIGTERM)
    gw.wait(timeout=20)
    sub.c.loop_stop()
    pub.loop_stop()
    broker.stop()
    ids = {f"p{i}" for i in range(args.prompts)}
    what = "broker restarts" if args.mode == "restart" else "gateway kills (SIGKILL)"
    print(f"mode {args.mode}, {args.restarts} {what}, {time.monotonic() - t0:.1f} s")
    print(
        f"prompts {args.prompts}, results for {len(ids & set(copies))} ids, "
        f"missing {len(ids - set(copies))}"
    )
    print(
        f"copies beyond the first: {sum(len(v) - 1 for v in copies.values())} (MQTT at-least-once)"
    )
    print(f"ids whose copies differ: {sum(len(set(v)) > 1 for v in copies.values())}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
