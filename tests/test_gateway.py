"""The MQTT ground gateway against a real mosquitto broker (started and stopped here, on a
free loopback port) with the real payload channel behind it (LocalEndpointService: the
PromptClient, Space Packets, the ModelEndpoint and a model backend).

The test clients use paho-mqtt directly (threaded, automatic reconnection), an MQTT client
independent of the gateway's aiomqtt code."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.drivers.service import LocalEndpointService, PromptService, ServiceResult
from linkstack.errors import ConfigError
from linkstack.gateway.mqtt import (
    Gateway,
    GatewayConfig,
    MalformedPrompt,
    compute_spacecraft,
    parse_broker_url,
    parse_prompt,
    percentiles,
)
from linkstack.payload.backend import FinishReason, Generation, RecordedBackend
from linkstack.payload.endpoint import EndpointConfig
from linkstack.payload.messages import GenerationParams

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
needs_broker = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")

PROMPTS = {f"prompt number {i}": f"answer number {i}" for i in range(60)}


def recorded(delay_s: float = 0.0) -> RecordedBackend:
    """Recorded generations; ``delay_s`` makes each generation take real time (a worker
    thread sleeps), so prompts are in flight while the test does something to the broker."""
    rec = {p: Generation(a, 10 + i, 3, 0.25, FinishReason.STOP)
           for i, (p, a) in enumerate(PROMPTS.items())}
    backend = RecordedBackend(rec)
    if delay_s:
        plain = backend.generate

        def slow(prompt: str, params: GenerationParams) -> Generation:
            time.sleep(delay_s)
            return plain(prompt, params)
        backend.generate = slow  # type: ignore[method-assign]
    return backend


# -- the broker --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A mosquitto process with persistence on, on a free loopback port.

    Subclasses change :meth:`config` and :attr:`ports` (test_gateway_security.py: TLS
    listeners, authentication, an ACL)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.ports = [self.port]  # the listeners start() waits for
        self.conf = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def user_line() -> str:
        # started as root, mosquitto drops to the "mosquitto" user, which cannot write the
        # persistence file (nor read keys) under pytest's private tmp folders: stay who we are
        return "user root\n" if os.geteuid() == 0 else ""

    def config(self) -> str:
        return (f"{self.user_line()}listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence true\n"
                f"persistence_location {self.folder}/\n"
                "persistence_file mosquitto.db\n"
                "autosave_interval 1\n"
                "max_queued_messages 100000\n"
                "log_dest stderr\nlog_type error\nlog_type warning\n")

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.conf.write_text(self.config())
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stderr=log)
        deadline = time.monotonic() + 10
        waiting = list(self.ports)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", waiting[0])) == 0:
                    waiting.pop(0)
                    if not waiting:
                        return
                    continue
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not open port {waiting[0]}")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): mosquitto writes its persistence file."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed")
    b = Mosquitto(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


# -- paho test clients -------------------------------------------------------------------------

@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool

    @property
    def doc(self) -> Any:
        return json.loads(self.payload)


@dataclass
class PahoClient:
    """A persistent-session paho client with automatic reconnection; optionally over TLS
    (``tls``) and with a user name and password. ``connacks`` lists the broker's answers to
    its CONNECTs, ``connected`` is set by the first that accepts it."""

    port: int
    client_id: str
    subscribe: str | list[str] | None = None
    received: list[Received] = field(default_factory=list)
    tls: ssl.SSLContext | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.connacks: list[str] = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             clean_session=False)
        if self.tls is not None:
            self.c.tls_set_context(self.tls)
        if self.username is not None:
            self.c.username_pw_set(self.username, self.password)
        self.c.reconnect_delay_set(0.05, 0.5)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", self.port, keepalive=30)
        self.c.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    *args: Any) -> None:
        self.connacks.append(str(reason))
        if reason.is_failure:
            return
        self.connected.set()
        topics = [self.subscribe] if isinstance(self.subscribe, str) else self.subscribe or []
        for topic in topics:
            client.subscribe(topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.received.append(Received(msg.topic, bytes(msg.payload), msg.qos,
                                          bool(msg.retain)))

    def publish(self, topic: str, payload: bytes | str,
                retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.c.publish(topic, payload, qos=1, retain=retain)  # queued while away

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


async def until(cond: Callable[[], bool], timeout: float = 20.0,
                what: str | Callable[[], str] = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.02)


async def with_gateway(broker: Mosquitto, service: PromptService,
                       body: Callable[[Gateway], Any], **config: Any) -> Gateway:
    gw = Gateway(service, GatewayConfig(**{"port": broker.port, "reconnect_max_s": 0.5,
                                           **config}))
    task = asyncio.get_running_loop().create_task(gw.run())
    try:
        await asyncio.wait_for(gw.connected.wait(), 10)
        await body(gw)
    finally:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=15)
        assert done, "the gateway did not stop when cancelled"
        if isinstance(service, LocalEndpointService):
            await service.aclose()
    return gw


def results(client: PahoClient) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in client.snapshot():
        if "/result/" in r.topic:
            out.setdefault(r.topic.rsplit("/", 1)[1], []).append(r.doc)
    return out


def check_breakdown(doc: dict[str, Any]) -> None:
    assert doc["breakdown"], doc
    assert all(v >= 0 for v in doc["breakdown"].values())
    assert math.isclose(sum(doc["breakdown"].values()), doc["total_s"], rel_tol=1e-9,
                        abs_tol=1e-9)


# -- the JSON contract -------------------------------------------------------------------------

@needs_broker
@pytest.mark.broker
def test_prompt_in_result_out(broker: Mosquitto) -> None:
    backend = recorded()
    service = LocalEndpointService(backend)
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")

    async def body(gw: Gateway) -> None:
        pub.publish("linkstack/sat1/prompt", json.dumps(
            {"id": "req-1", "prompt": "prompt number 3", "max_tokens": 8, "extra": "ignored"}))
        pub.publish("linkstack/sat1/prompt", json.dumps({"id": 42, "prompt": "prompt number 4"}))
        await until(lambda: len(results(sub)) == 2, what="two results")

    try:
        asyncio.run(with_gateway(broker, service, body))
        got = {r.topic: r for r in sub.snapshot()}
        one = got["linkstack/sat1/result/req-1"]
        assert (one.qos, one.retain) == (1, False)  # published with QoS 1 (min of pub/sub)
        doc = one.doc
        assert (doc["id"], doc["status"], doc["text"]) == ("req-1", "ok", "answer number 3")
        assert (doc["prompt_tokens"], doc["completion_tokens"]) == (13, 3)
        assert set(doc["breakdown"]) == {"uplink.coding", "onboard.queueing",
                                         "onboard.inference", "downlink.coding"}
        check_breakdown(doc)
        two = got["linkstack/sat1/result/42"].doc
        assert (two["id"], two["text"]) == (42, "answer number 4")  # integer id echoed
        # max_tokens travelled through the Prompt message to the model; default 64
        assert [(p, params.max_tokens) for p, params in backend.calls] == [
            ("prompt number 3", 8), ("prompt number 4", 64)]
    finally:
        sub.close()
        pub.close()


BAD_WITHOUT_ID = [b"\xff\xfe{", b"not json", b"[1, 2]", b'{"prompt": "x"}',
                  b'{"id": "a/b", "prompt": "x"}', b'{"id": true, "prompt": "x"}',
                  b'{"id": "", "prompt": "x"}', b'{"id": "_", "prompt": "x"}']
BAD_WITH_ID = {"m1": b'{"id": "m1"}', "m2": b'{"id": "m2", "prompt": ""}',
               "m3": b'{"id": "m3", "prompt": "x", "max_tokens": 0}',
               "m4": b'{"id": "m4", "prompt": "x", "max_tokens": true}',
               "m5": b'{"id": "m5", "prompt": "x", "max_tokens": 65536}',
               "m6": b'{"id": "m6", "prompt": 5}'}


@needs_broker
@pytest.mark.broker
def test_malformed_messages_get_error_results(broker: Mosquitto) -> None:
    service = LocalEndpointService(recorded())
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")

    async def body(gw: Gateway) -> None:
        for bad in BAD_WITHOUT_ID + list(BAD_WITH_ID.values()):
            pub.publish("linkstack/sat1/prompt", bad)
        pub.publish("linkstack/sat1/prompt", json.dumps({"id": "ok", "prompt":
                                                         "prompt number 1"}))
        n = len(BAD_WITHOUT_ID) + len(BAD_WITH_ID) + 1
        await until(lambda: sum(map(len, results(sub).values())) == n, what="all results")
        assert gw.stats.malformed == n - 1

    try:
        asyncio.run(with_gateway(broker, service, body))
        got = results(sub)
        nameless = got.pop("_")
        assert len(nameless) == len(BAD_WITHOUT_ID)
        assert all(d["status"] == "malformed" and d["id"] is None and d["text"]
                   for d in nameless)
        ok = got.pop("ok")
        assert [d["status"] for d in ok] == ["ok"]  # the gateway kept serving
        assert set(got) == set(BAD_WITH_ID)
        for key, (doc,) in got.items():
            assert (doc["id"], doc["status"]) == (key, "malformed")
        assert "max_tokens" in got["m3"][0]["text"]
        assert service.asked == 1  # nothing malformed went over the link
    finally:
        sub.close()
        pub.close()


@needs_broker
@pytest.mark.broker
def test_status_contents(broker: Mosquitto) -> None:
    service = LocalEndpointService(recorded())
    pub = PahoClient(broker.port, "t-prompts")
    watcher = PahoClient(broker.port, "t-status", "linkstack/sat1/status")

    live: dict[str, Any] = {}

    def latest() -> dict[str, Any]:
        docs = [r.doc for r in watcher.snapshot()]
        return docs[-1] if docs else {}

    async def body(gw: Gateway) -> None:
        for i in range(6):
            pub.publish("linkstack/sat1/prompt",
                        json.dumps({"id": f"s{i}", "prompt": f"prompt number {i}"}))
        pub.publish("linkstack/sat1/prompt", b"garbage")
        await until(lambda: latest().get("results_published") == 7
                    and latest().get("latency_s", {}).get("count") == 6, what="status")
        live.update(latest())

    try:
        asyncio.run(with_gateway(broker, service, body, status_interval_s=0.1))
        doc = live
        assert doc["spacecraft"] == "sat1" and doc["gateway"] == "online"
        assert doc["prompts_received"] == 7 and doc["malformed"] == 1
        assert doc["results_by_status"] == {"ok": 6, "malformed": 1}
        lat = doc["latency_s"]
        assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert doc["link"]["service"] == "local-endpoint"
        assert doc["link"]["endpoint"]["results"]["ok"] == 6
        assert all(r.qos == 1 for r in watcher.snapshot())
        # the gateway has stopped: a new subscriber gets the retained status, "offline"
        late = PahoClient(broker.port, "t-late", "linkstack/sat1/status")
        deadline = time.monotonic() + 5
        while not late.snapshot() and time.monotonic() < deadline:
            time.sleep(0.02)
        late.close()
        (retained,) = late.snapshot()
        assert retained.retain and retained.qos == 1
        assert retained.doc["gateway"] == "offline"
    finally:
        watcher.close()
        pub.close()


# -- no loss across a broker restart -----------------------------------------------------------

@needs_broker
@pytest.mark.broker
def test_broker_restart_mid_traffic_loses_no_prompt_and_no_result(broker: Mosquitto) -> None:
    backend = recorded(delay_s=0.03)
    service = LocalEndpointService(backend, EndpointConfig(queue_limit=8))
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")
    texts = list(PROMPTS)[:40]
    seen: dict[str, Any] = {}

    async def body(gw: Gateway) -> None:
        for i, text in enumerate(texts[:20]):
            pub.publish("linkstack/sat1/prompt", json.dumps({"id": f"r{i}", "prompt": text}))
        await until(lambda: len(results(sub)) >= 3, what="first results")
        seen["before"] = len(results(sub))
        seen["in_flight"] = len(gw._in_progress)
        await asyncio.to_thread(broker.stop)
        # while the broker is down: prompts keep being answered into the outbox, and the
        # test publisher queues 20 more prompts (paho keeps QoS 1 messages until connected)
        for i, text in enumerate(texts[20:], start=20):
            pub.publish("linkstack/sat1/prompt", json.dumps({"id": f"r{i}", "prompt": text}))
        await asyncio.sleep(0.3)
        seen["outbox_while_down"] = sum(1 for o in gw._outbox if o.kind == "result")
        await asyncio.to_thread(broker.start)
        await until(lambda: len(results(sub)) == 40, timeout=30, what=lambda: (
            f"all 40 results; missing {sorted(set(f'r{i}' for i in range(40)) - set(results(sub)))}"
            f" {gw.stats} outbox {len(gw._outbox)} in progress {sorted(gw._in_progress)}"
            f" model calls {len(backend.calls)}; broker log: {broker.log.read_text()}"))
        seen["connects"] = gw.stats.connects

    try:
        asyncio.run(with_gateway(broker, service, body, max_in_flight=4))
        got = results(sub)
        assert set(got) == {f"r{i}" for i in range(40)}
        for i, text in enumerate(texts):
            docs = got[f"r{i}"]
            # QoS 1 is at-least-once: a result may come twice, always the same one
            assert all(d == docs[0] for d in docs)
            assert (docs[0]["status"], docs[0]["text"]) == ("ok", PROMPTS[text])
        # the restart really happened in the middle of the traffic
        assert seen["before"] < 20
        assert seen["in_flight"] + seen["outbox_while_down"] > 0
        assert seen["connects"] >= 2
        # and no prompt went over the link twice
        assert sorted(p for p, _ in backend.calls) == sorted(texts)
        # the broker kept its state across the restart (what makes the claim hold)
        assert (broker.folder / "mosquitto.db").is_file()
        assert "Error" not in broker.log.read_text()
    finally:
        sub.close()
        pub.close()


# -- over the RF link ---------------------------------------------------------------------------

@needs_broker
@pytest.mark.broker
def test_gateway_forwards_over_the_udp_rf_link(broker: Mosquitto) -> None:
    """The gateway as the ground station of a satellite across the RF hop (COP-1 over TC
    CLTUs up, TM CADUs with the CLCW down), over real UDP sockets; the status topic carries
    the link's COP-1 state and frame counters."""
    from linkstack.drivers.udp import PacedBackend, UdpGroundService, UdpSatellite, rf_hop_config
    from linkstack.sims.scenario import load_scenario

    hop = rf_hop_config(load_scenario("default")).config
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")
    watcher = PahoClient(broker.port, "t-status", "linkstack/sat1/status")
    sat = UdpSatellite(PacedBackend(recorded()), hop)
    ground = UdpGroundService(hop)

    async def main() -> None:
        s_addr = await sat.start(("127.0.0.1", 0), ("127.0.0.1", 9))
        sat.link.peer = await ground.start(("127.0.0.1", 0), s_addr)

        async def body(gw: Gateway) -> None:
            for i in range(4):
                pub.publish("linkstack/sat1/prompt",
                            json.dumps({"id": f"u{i}", "prompt": f"prompt number {i}"}))
            await until(lambda: len(results(sub)) == 4, what="four results over the link")
            await until(lambda: any(r.doc.get("results_published") == 4
                                    for r in watcher.snapshot()), what="status")

        try:
            await with_gateway(broker, ground, body, status_interval_s=0.2)
        finally:
            await ground.aclose()
            await sat.aclose()

    try:
        asyncio.run(main())
        got = results(sub)
        for i in range(4):
            (doc,) = got[f"u{i}"]
            assert (doc["status"], doc["text"]) == ("ok", f"answer number {i}")
            assert set(doc["breakdown"]) == {"link.round_trip", "onboard.queueing",
                                             "onboard.inference"}
            check_breakdown(doc)
        status = next(r.doc for r in watcher.snapshot()
                      if r.doc.get("results_published") == 4)
        link = status["link"]["link"]
        assert link["cop1_state"] == "S1" and link["vs"] == 4
        assert link["counters"]["frames_sent"] >= 4
        assert "retransmissions" in link["counters"]
        assert link["udp"]["units_received"] > 0
    finally:
        sub.close()
        pub.close()
        watcher.close()


@needs_broker
@pytest.mark.broker
def test_gateway_over_the_simulated_stack(broker: Mosquitto) -> None:
    """The lead's SimulatedLinkService (the scenario's whole stack in virtual time) behind
    the gateway: the result carries the per-hop breakdown of the simulation."""
    from linkstack.sims.scenario import load_scenario
    from linkstack.sims.simulated_service import SimulatedLinkService

    service = SimulatedLinkService(load_scenario("default"), recorded())
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")

    async def body(gw: Gateway) -> None:
        pub.publish("linkstack/sat1/prompt",
                    json.dumps({"id": "sim", "prompt": "prompt number 7", "max_tokens": 16}))
        await until(lambda: "sim" in results(sub), timeout=60, what="the simulated result")

    try:
        asyncio.run(with_gateway(broker, service, body))
        (doc,) = results(sub)["sim"]
        assert (doc["status"], doc["text"]) == ("ok", "answer number 7")
        assert any(k.startswith("uplink.") for k in doc["breakdown"])
        check_breakdown(doc)
    finally:
        sub.close()
        pub.close()


@needs_broker
@pytest.mark.broker
def test_simulated_stack_partials_are_published(broker: Mosquitto) -> None:
    """The simulated service streams too: the recorded Gemma answers carry their token times,
    the default scenario cuts them every 8 tokens or 0.5 s, and the partials that reached the
    simulated ground are published, in order, before the result."""
    from pathlib import Path

    from linkstack.sims.scenario import load_scenario
    from linkstack.sims.simulated_service import SimulatedLinkService

    recording = Path(__file__).resolve().parent.parent / "sims/scenarios/gemma-recorded.json"
    backend = RecordedBackend.from_json(recording.read_text())
    service = SimulatedLinkService(load_scenario("default"), backend)
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")
    question = "Name the largest ocean on Earth."

    async def body(gw: Gateway) -> None:
        pub.publish("linkstack/sat1/prompt", json.dumps({"id": "o", "prompt": question}))
        await until(lambda: "o" in results(sub), timeout=60, what="the simulated result")

    try:
        asyncio.run(with_gateway(broker, service, body))
        topics = [r.topic for r in sub.snapshot()]
        parts = _partials(sub, "o")
        (doc,) = [r.doc for r in sub.snapshot() if r.topic == "linkstack/sat1/result/o"]
        assert len(parts) >= 1 and topics.index("linkstack/sat1/result/o") == len(parts)
        assert [p["segment"] for p in parts] == list(range(len(parts)))
        streamed = "".join(p["text"] for p in parts)
        assert streamed and doc["text"].startswith(streamed)
        assert parts[0]["elapsed_s"] == pytest.approx(doc["ttft_s"], abs=1e-6)  # (rounded)
        assert doc["ttft_s"] < doc["total_s"]
    finally:
        sub.close()
        pub.close()


def test_gateway_cli() -> None:
    import typer
    from typer.testing import CliRunner

    from linkstack.cli import gateway as cli

    app = typer.Typer()
    cli.register(app)

    @app.callback()
    def _root() -> None:
        """(so that the command keeps its name)"""

    runner = CliRunner()
    assert runner.invoke(app, ["gateway", "--help"]).exit_code == 0
    bad = runner.invoke(app, ["gateway", "--broker", "mqtt://127.0.0.1:1",
                              "--spacecraft", "relay9"])
    assert bad.exit_code == 2 and "relay9" in bad.output
    bad = runner.invoke(app, ["gateway", "--broker", "http://x"])
    assert bad.exit_code == 2


def _partials(client: PahoClient, rid: str) -> list[Any]:
    return [r.doc for r in client.snapshot()
            if r.topic == f"linkstack/sat1/result/{rid}/partial"]


@needs_broker
@pytest.mark.broker
def test_partials_are_published_in_order_before_the_result(broker: Mosquitto) -> None:
    answer = "Paris is the capital of France."
    pieces = ((0.1, 1, 5), (0.2, 2, 8), (0.3, 3, 12), (0.4, 4, 20), (0.5, 5, 23),
              (0.6, 6, 30), (0.7, 7, 31))
    backend = RecordedBackend({"q": Generation(answer, 9, 7, 0.7, FinishReason.STOP, pieces)})
    service = LocalEndpointService(backend, EndpointConfig(stream_tokens=2))
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    plain = PahoClient(broker.port, "t-finals", "linkstack/sat1/result/+")
    pub = PahoClient(broker.port, "t-prompts")

    async def body(gw: Gateway) -> None:
        pub.publish("linkstack/sat1/prompt", json.dumps({"id": "s1", "prompt": "q"}))
        await until(lambda: "s1" in results(plain), what="the result")
        await until(lambda: gw.stats.partials_published == 4, what="four partials")
        assert gw.status_message()["partials_published"] == 4

    try:
        asyncio.run(with_gateway(broker, service, body))
        topics = [r.topic for r in sub.snapshot()]
        final = topics.index("linkstack/sat1/result/s1")
        parts = _partials(sub, "s1")
        # cut after tokens 1, 3, 5, 7: all before the result, on the same connection
        assert [p["segment"] for p in parts] == [0, 1, 2, 3]
        assert topics[:final] == ["linkstack/sat1/result/s1/partial"] * 4
        assert [p["text"] for p in parts] == ["Paris", " is the", " capital of", " France."]
        assert "".join(p["text"] for p in parts) == parts[-1]["so_far"] == answer
        assert all(p["id"] == "s1" and p["elapsed_s"] >= 0 for p in parts)
        assert [r.topic for r in plain.snapshot()] == ["linkstack/sat1/result/s1"]
        assert results(plain)["s1"][0]["text"] == answer
    finally:
        sub.close()
        plain.close()
        pub.close()


# -- the real model ----------------------------------------------------------------------------

@needs_broker
@pytest.mark.broker
@pytest.mark.model
def test_real_model_behind_the_gateway(broker: Mosquitto) -> None:
    from linkstack.payload.backend import LlamaCppBackend, ModelNotInstalled

    try:
        backend = LlamaCppBackend()
    except ModelNotInstalled as exc:
        pytest.skip(str(exc))
    service = LocalEndpointService(backend)
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")

    async def body(gw: Gateway) -> None:
        pub.publish("linkstack/sat1/prompt", json.dumps(
            {"id": "paris", "prompt": "What is the capital of France?", "max_tokens": 8}))
        await until(lambda: "paris" in results(sub), timeout=120, what="the model's answer")

    try:
        asyncio.run(with_gateway(broker, service, body))
        (doc,) = results(sub)["paris"]
        assert doc["status"] == "ok"
        assert "Paris" in doc["text"]
        assert 0 < doc["completion_tokens"] <= 8
        assert doc["breakdown"]["onboard.inference"] > 0
        check_breakdown(doc)
    finally:
        sub.close()
        pub.close()


@needs_broker
@pytest.mark.broker
@pytest.mark.model
def test_real_model_streams_partials_through_the_gateway(broker: Mosquitto) -> None:
    from linkstack.payload.backend import LlamaCppBackend, ModelNotInstalled

    try:
        backend = LlamaCppBackend()
    except ModelNotInstalled as exc:
        pytest.skip(str(exc))
    service = LocalEndpointService(backend, EndpointConfig(stream_tokens=2))
    sub = PahoClient(broker.port, "t-results", "linkstack/sat1/result/#")
    pub = PahoClient(broker.port, "t-prompts")
    arrivals: dict[str, float] = {}

    def arrived() -> bool:
        for r in sub.snapshot():
            arrivals.setdefault(r.topic, time.monotonic())
        return "linkstack/sat1/result/ocean" in arrivals

    async def body(gw: Gateway) -> None:
        pub.publish("linkstack/sat1/prompt", json.dumps(
            {"id": "ocean", "prompt": "Name the largest ocean on Earth.", "max_tokens": 24}))
        await until(arrived, timeout=120, what="the model's answer")

    try:
        asyncio.run(with_gateway(broker, service, body))
        parts = _partials(sub, "ocean")
        (doc,) = [r.doc for r in sub.snapshot() if r.topic == "linkstack/sat1/result/ocean"]
        assert doc["status"] == "ok" and len(parts) >= 2
        # the partials are the answer's beginning; the result brings the rest
        streamed = "".join(p["text"] for p in parts)
        assert streamed == parts[-1]["so_far"] and doc["text"].startswith(streamed)
        assert len(streamed) > len(doc["text"]) // 2
        # the first words were out before the answer was complete
        first = arrivals["linkstack/sat1/result/ocean/partial"]
        assert first < arrivals["linkstack/sat1/result/ocean"]
    finally:
        sub.close()
        pub.close()


# -- no broker needed --------------------------------------------------------------------------

def test_parse_prompt_accepts_the_contract() -> None:
    r = parse_prompt(b'{"id": "x", "prompt": "hi", "max_tokens": 65535}')
    assert (r.id, r.prompt, r.max_tokens, r.key) == ("x", "hi", 65535, "x")
    assert parse_prompt(b'{"id": 7, "prompt": "hi"}', default_max_tokens=9).max_tokens == 9
    for bad in BAD_WITHOUT_ID:
        with pytest.raises(MalformedPrompt) as err:
            parse_prompt(bad)
        assert err.value.request_id is None
    for key, bad in BAD_WITH_ID.items():
        with pytest.raises(MalformedPrompt) as err:
            parse_prompt(bad)
        assert err.value.request_id == key


@settings(max_examples=300)
@given(st.binary(max_size=60) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "prompt", "max_tokens", "x"]), inner, max_size=4),
).map(lambda v: json.dumps(v).encode()))
def test_parse_prompt_fuzz(payload: bytes) -> None:
    try:
        r = parse_prompt(payload)
    except MalformedPrompt:
        return
    assert isinstance(r.prompt, str) and r.prompt
    assert 1 <= r.max_tokens <= 65535


def test_broker_url() -> None:
    assert parse_broker_url("mqtt://example.org:1884") == ("example.org", 1884, False)
    assert parse_broker_url("mqtt://127.0.0.1") == ("127.0.0.1", 1883, False)
    assert parse_broker_url("localhost:99") == ("localhost", 99, False)
    assert parse_broker_url("mqtts://example.org") == ("example.org", 8883, True)
    assert parse_broker_url("mqtts://[::1]:8884") == ("::1", 8884, True)
    for bad in ("http://h:1", "mqtt://", "mqtts://", "mqtt://h:port",
                "mqtts://user:secret@h:1", "mqtts://user@h"):
        with pytest.raises(ConfigError) as err:
            parse_broker_url(bad)
        assert err.value.key == "broker" and "secret" not in str(err.value)


def test_percentiles_against_statistics() -> None:
    import statistics

    values = [0.5, 0.1, 0.3, 0.9, 0.7, 0.2, 0.4]
    p = percentiles(values)
    # statistics.quantiles(method="inclusive") is the same linear interpolation
    q = statistics.quantiles(values, n=100, method="inclusive")
    assert math.isclose(p["p50"], q[49]) and math.isclose(p["p90"], q[89])
    assert math.isclose(p["p99"], q[98]) and p["max"] == 0.9
    assert percentiles([]) == {}


def test_compute_spacecraft_of_the_default_scenario() -> None:
    from linkstack.sims.scenario import load_scenario

    assert compute_spacecraft(load_scenario("default")) == "sat1"


def test_local_service_statuses_and_breakdown() -> None:
    async def main() -> list[ServiceResult]:
        backend = recorded(delay_s=0.02)

        def broken(prompt: str, params: GenerationParams) -> Generation:
            raise RuntimeError("model fell over")
        service = LocalEndpointService(backend, EndpointConfig(queue_limit=2))
        asks = [service.ask(f"q{i}", f"prompt number {i}", 16) for i in range(4)]
        out = list(await asyncio.gather(*asks))
        backend.generate = broken  # type: ignore[method-assign]
        out.append(await service.ask("q9", "prompt number 9", 16))
        out.append(await service.ask("q10", "x" * 9000, 16))  # over max_prompt_octets
        out.append(await service.ask("q11", "x", 0))  # invalid max_tokens
        await service.aclose()
        return out

    out = asyncio.run(main())
    statuses = [r.status for r in out]
    # the four prompts reach the endpoint before its worker takes the first job: two fit the
    # queue (queue_limit 2), the other two are told the endpoint is busy
    assert sorted(statuses[:4]) == ["busy", "busy", "ok", "ok"]
    assert statuses[4:] == ["backend_error", "prompt_too_long", "malformed"]
    assert "model fell over" in out[4].text
    for r in out[:6]:
        assert math.isclose(sum(r.breakdown.values()), r.total_s, rel_tol=1e-9, abs_tol=1e-12)
    ok = [r for r in out if r.status == "ok"]
    assert all(r.breakdown["onboard.inference"] >= 0.02 for r in ok)
