"""The MQTT gateway over TLS with authentication, against a real mosquitto (started here) that
requires it: a throwaway CA, broker and client certificates made in the test with pyca
``cryptography``, a password file made by ``mosquitto_passwd``, and an ACL under which only the
gateway's identity reads prompts and writes results and status, and each user writes prompts
to and reads results of its own spacecraft only (``alice``: sat1, ``bob``: sat2).

The broker has three TLS listeners (``per_listener_settings``):

- ``cert_port``: a client certificate signed by the test CA is required; its common name is
  the identity (``use_identity_as_username``);
- ``password_port``: user name and password (no client certificate);
- ``wrong_name_port``: like ``password_port``, but the broker's certificate names another host.

The test clients use paho-mqtt with their own :mod:`ssl` contexts, independent of the gateway's
code (linkstack/gateway/security.py)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from test_gateway import (
    MOSQUITTO,
    Mosquitto,
    PahoClient,
    free_port,
    needs_broker,
    recorded,
    results,
    until,
    with_gateway,
)

from linkstack.drivers.service import LocalEndpointService
from linkstack.errors import ConfigError
from linkstack.gateway.mqtt import Gateway, GatewayConfig
from linkstack.gateway.security import PASSWORD_ENV, client_tls_context

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "sims" / "scenarios" / "gemma-recorded.json"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or (
    "/usr/bin/mosquitto_passwd" if os.path.exists("/usr/bin/mosquitto_passwd") else None)
needs_passwd = pytest.mark.skipif(MOSQUITTO_PASSWD is None,
                                  reason="mosquitto_passwd is not installed")

ACL = """\
user gateway
topic read linkstack/+/prompt
topic write linkstack/+/result/#
topic readwrite linkstack/+/status

user alice
topic write linkstack/sat1/prompt
topic read linkstack/sat1/result/#
topic read linkstack/sat1/status

user bob
topic write linkstack/sat2/prompt
topic read linkstack/sat2/result/#
topic read linkstack/sat2/status
"""


# -- a throwaway PKI -----------------------------------------------------------------------------

def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@dataclass
class Pki:
    """PEM files in ``folder``: ``ca.pem`` and ``rogue-ca.pem`` (two CAs), and
    ``<name>.pem`` + ``<name>.key`` (mode 0600) for ``server`` (127.0.0.1 and localhost),
    ``wrong-name`` (broker.invalid only), the clients ``gateway`` and ``alice``, and
    ``rogue-gateway`` (CN gateway, signed by the rogue CA)."""

    folder: Path

    def __post_init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self._validity = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
        ca_key, ca = self._ca("linkstack test CA", "ca")
        rogue_key, rogue = self._ca("rogue CA", "rogue-ca")
        local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        self._leaf("server", "broker", ca_key, ca, ExtendedKeyUsageOID.SERVER_AUTH, local)
        self._leaf("wrong-name", "broker", ca_key, ca, ExtendedKeyUsageOID.SERVER_AUTH,
                   [x509.DNSName("broker.invalid")])
        for client in ("gateway", "alice"):
            self._leaf(client, client, ca_key, ca, ExtendedKeyUsageOID.CLIENT_AUTH)
        self._leaf("rogue-gateway", "gateway", rogue_key, rogue,
                   ExtendedKeyUsageOID.CLIENT_AUTH)

    def __truediv__(self, name: str) -> Path:
        return self.folder / name

    def _builder(self, subject: str, issuer: x509.Name,
                 key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(self._validity[0]).not_valid_after(self._validity[1])
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False))

    def _ca(self, common_name: str, stem: str
            ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (self._builder(common_name, _name(common_name), key)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        (self.folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return key, cert

    def _leaf(self, stem: str, common_name: str, ca_key: ec.EllipticCurvePrivateKey,
              ca: x509.Certificate, usage: x509.ObjectIdentifier,
              names: list[x509.GeneralName] | None = None) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (self._builder(common_name, ca.subject, key)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       ca_key.public_key()), critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (self.folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(self.folder / f"{stem}.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def client_context(self, ca: str = "ca", cert: str | None = None) -> ssl.SSLContext:
        """A test client's own TLS context (the standard library's defaults: verified,
        host name checked)."""
        ctx = ssl.create_default_context(cafile=str(self / f"{ca}.pem"))
        if cert is not None:
            ctx.load_cert_chain(self / f"{cert}.pem", self / f"{cert}.key")
        return ctx

    def gateway_options(self, *, ca: str = "ca", cert: str = "gateway") -> dict[str, Any]:
        """GatewayConfig settings of the gateway's certificate identity."""
        return {"tls": True, "ca_file": str(self / f"{ca}.pem"),
                "cert_file": str(self / f"{cert}.pem"), "key_file": str(self / f"{cert}.key")}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


# -- the broker ------------------------------------------------------------------------------------

class SecureMosquitto(Mosquitto):
    """mosquitto with the three TLS listeners of the module docstring, a password file and the
    ACL; no plain-TCP listener at all."""

    def __init__(self, folder: Path, pki: Pki) -> None:
        super().__init__(folder)
        self.pki = pki
        self.cert_port = self.port
        self.password_port = free_port()
        self.wrong_name_port = free_port()
        self.ports = [self.cert_port, self.password_port, self.wrong_name_port]
        self.passwords = {user: secrets.token_urlsafe(12)
                          for user in ("gateway", "alice", "bob", "mallory")}
        self.passwd = folder / "passwd"
        assert MOSQUITTO_PASSWD is not None
        for i, (user, password) in enumerate(self.passwords.items()):
            subprocess.run([MOSQUITTO_PASSWD, "-b", *(["-c"] if i == 0 else []),
                            str(self.passwd), user, password], check=True,
                           capture_output=True, timeout=30)
        self.acl = folder / "acl"
        self.acl.write_text(ACL)

    def config(self) -> str:
        def listener(port: int, server: str, auth: str) -> str:
            return (f"listener {port} 127.0.0.1\n"
                    f"cafile {self.pki / 'ca.pem'}\n"
                    f"certfile {self.pki / f'{server}.pem'}\n"
                    f"keyfile {self.pki / f'{server}.key'}\n"
                    f"{auth}allow_anonymous false\nacl_file {self.acl}\n")

        password = f"password_file {self.passwd}\n"
        return (f"{self.user_line()}per_listener_settings true\n"
                "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
                + listener(self.cert_port, "server",
                           "require_certificate true\nuse_identity_as_username true\n")
                + listener(self.password_port, "server", password)
                + listener(self.wrong_name_port, "wrong-name", password))

    def user(self, client_id: str, subscribe: str | list[str] | None = None,
             name: str = "alice") -> PahoClient:
        """A connected paho client of ``name`` on the password listener."""
        c = PahoClient(self.password_port, client_id, subscribe, tls=self.pki.client_context(),
                       username=name, password=self.passwords[name])
        assert c.connected.wait(10), f"{name} could not connect: {c.connacks}"
        return c


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[SecureMosquitto]:
    if MOSQUITTO is None or MOSQUITTO_PASSWD is None:
        pytest.skip("mosquitto or mosquitto_passwd is not installed")
    b = SecureMosquitto(tmp_path, pki)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def _prompt(request_id: str, text: str) -> str:
    return json.dumps({"id": request_id, "prompt": text, "max_tokens": 16})


def _gateway_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "linkstack", "gateway", *args], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})})


def _stop(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM, then the process's stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode(errors="replace")


def _online(client: PahoClient) -> bool:
    return any(r.topic.endswith("/status") and r.doc.get("gateway") == "online"
               for r in client.snapshot())


# -- end to end --------------------------------------------------------------------------------

@needs_broker
@needs_passwd
@pytest.mark.broker
def test_gateway_over_tls_with_a_client_certificate_answers_a_prompt(
        broker: SecureMosquitto, pki: Pki) -> None:
    """``linkstack gateway --broker mqtts://...`` with a client certificate (the listener
    takes nothing else), the recorded model behind it; the user publishes a prompt over TLS
    with a password and gets the gateway's answer."""
    recording = json.loads(RECORDED.read_text())["recordings"]
    question = "What is the capital of France?"
    user = broker.user("t-alice", ["linkstack/sat1/result/#", "linkstack/sat1/status"])
    gw = _gateway_cli("--broker", f"mqtts://127.0.0.1:{broker.cert_port}",
                      "--ca-file", str(pki / "ca.pem"), "--cert-file", str(pki / "gateway.pem"),
                      "--key-file", str(pki / "gateway.key"), "--service", "local",
                      "--backend", f"recorded:{RECORDED}", "--status-interval", "0.5")
    try:
        asyncio.run(until(lambda: _online(user) or gw.poll() is not None, timeout=60,
                          what="the gateway's status"))
        assert gw.poll() is None, _stop(gw)
        user.publish("linkstack/sat1/prompt", _prompt("tls-1", question))
        asyncio.run(until(lambda: "tls-1" in results(user), timeout=60, what="the result"))
        (doc,) = results(user)["tls-1"]
        assert (doc["id"], doc["status"]) == ("tls-1", "ok")
        assert doc["text"] == recording[question]["text"]
    finally:
        err = _stop(gw)
        user.close()
    assert gw.returncode == 0, err
    assert "Traceback" not in err and "error" not in err.lower(), err
    assert f"mqtts://127.0.0.1:{broker.cert_port}" in err  # the banner says TLS


@needs_broker
@needs_passwd
@pytest.mark.broker
@pytest.mark.parametrize("source", ["file", "environment"])
def test_gateway_with_a_user_name_and_password(broker: SecureMosquitto, tmp_path: Path,
                                               source: str) -> None:
    """The gateway authenticated by user name and password (from a mode 0600 file or
    LINKSTACK_MQTT_PASSWORD), the scenario's whole stack in virtual time behind it (``--service
    sim``); the password shows nowhere in what the gateway prints."""
    recording = json.loads(RECORDED.read_text())["recordings"]
    question = "Name the largest ocean on Earth."
    password = broker.passwords["gateway"]
    if source == "file":
        secret = tmp_path / "gateway.password"
        _write_private(secret, f"{password}\n".encode())
        extra, env = ["--password-file", str(secret)], {}
    else:
        extra, env = [], {PASSWORD_ENV: password}
    user = broker.user("t-alice", ["linkstack/sat1/result/#", "linkstack/sat1/status"])
    gw = _gateway_cli("--broker", f"mqtts://127.0.0.1:{broker.password_port}",
                      "--ca-file", str(broker.pki / "ca.pem"), "--username", "gateway", *extra,
                      "--service", "sim", "--backend", f"recorded:{RECORDED}", env=env)
    try:
        asyncio.run(until(lambda: _online(user) or gw.poll() is not None, timeout=60,
                          what="the gateway's status"))
        assert gw.poll() is None, _stop(gw)
        user.publish("linkstack/sat1/prompt", _prompt("pw-1", question))
        asyncio.run(until(lambda: "pw-1" in results(user), timeout=90, what="the result"))
        (doc,) = results(user)["pw-1"]
        assert (doc["status"], doc["text"]) == ("ok", recording[question]["text"])
        assert any(k.startswith("uplink.") for k in doc["breakdown"])  # the simulated stack
    finally:
        err = _stop(gw)
        user.close()
    assert gw.returncode == 0, err
    assert "user gateway" in err and password not in err, err
    assert "Traceback" not in err, err


# -- who may connect ---------------------------------------------------------------------------

@needs_broker
@needs_passwd
@pytest.mark.broker
def test_clients_without_a_certificate_or_with_a_wrong_password_cannot_connect(
        broker: SecureMosquitto, pki: Pki) -> None:
    ca = pki.client_context
    passwords = broker.passwords
    # each listener lets its own kind of client in (so the refusals below are the broker's
    # checks, not a broken set-up)
    good = [PahoClient(broker.cert_port, "good-cert", tls=ca(cert="alice")),
            PahoClient(broker.password_port, "good-password", tls=ca(), username="alice",
                       password=passwords["alice"])]
    refused = {
        "no certificate": PahoClient(broker.cert_port, "p1", tls=ca()),
        "certificate of another CA": PahoClient(broker.cert_port, "p2",
                                                tls=ca(cert="rogue-gateway")),
        "password instead of certificate": PahoClient(
            broker.cert_port, "p3", tls=ca(), username="alice", password=passwords["alice"]),
        "wrong password": PahoClient(broker.password_port, "p4", tls=ca(), username="alice",
                                     password=passwords["mallory"]),
        "unknown user": PahoClient(broker.password_port, "p5", tls=ca(), username="eve",
                                   password=passwords["alice"]),
        "no credentials": PahoClient(broker.password_port, "p6", tls=ca()),
    }
    try:
        for c in good:
            assert c.connected.wait(10), c.connacks
        time.sleep(2.0)  # the refused ones have had time to try, and retry
        for what, c in refused.items():
            assert not c.connected.is_set(), what
        # the password listener answers a bad password with CONNACK "not authorized"; the
        # certificate listener ends the TLS connection before any MQTT
        for what in ("wrong password", "unknown user", "no credentials"):
            assert refused[what].connacks, what
            assert all(a == "Not authorized" for a in refused[what].connacks), what
        for what in ("no certificate", "certificate of another CA"):
            assert refused[what].connacks == [], what
        # and a client that does not trust the broker's certificate does not talk to it
        with pytest.raises(ssl.SSLCertVerificationError):
            PahoClient(broker.password_port, "p7", tls=ca(ca="rogue-ca"), username="alice",
                       password=passwords["alice"])
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            PahoClient(broker.wrong_name_port, "p8", tls=ca(), username="alice",
                       password=passwords["alice"])
    finally:
        for c in [*good, *refused.values()]:
            c.close()


@needs_broker
@needs_passwd
@pytest.mark.broker
def test_anonymous_plain_tcp_and_unlisted_clients_cannot_read_prompts_or_results(
        broker: SecureMosquitto, pki: Pki) -> None:
    """While the user and the gateway exchange a prompt and its result, clients that are not
    authenticated (plain TCP, anonymous TLS) and an authenticated user the ACL does not list
    subscribe to everything and receive nothing."""
    spies = {
        "plain TCP, certificate listener": PahoClient(broker.cert_port, "s1", "#"),
        "plain TCP, password listener": PahoClient(broker.password_port, "s2", "#",
                                                   username="mallory",
                                                   password=broker.passwords["mallory"]),
        "anonymous TLS": PahoClient(broker.password_port, "s3", "#",
                                    tls=pki.client_context()),
    }
    mallory = broker.user("s4", ["#", "linkstack/sat1/prompt", "linkstack/sat1/result/#",
                                 "linkstack/sat1/status"], name="mallory")
    spies["mallory (not in the ACL)"] = mallory
    user = broker.user("t-alice", "linkstack/sat1/result/#")
    service = LocalEndpointService(recorded())

    async def body(gw: Gateway) -> None:
        for i in range(3):
            user.publish("linkstack/sat1/prompt", _prompt(f"s{i}", f"prompt number {i}"))
        await until(lambda: len(results(user)) == 3, what="three results")
        await asyncio.sleep(0.5)  # anything the spies could get has reached them

    try:
        asyncio.run(with_gateway(broker, service, body, **pki.gateway_options(),
                                 status_interval_s=0.2))
        assert {k: d[0]["text"] for k, d in results(user).items()} == {
            f"s{i}": f"answer number {i}" for i in range(3)}
        for what, spy in spies.items():
            assert spy.snapshot() == [], what
        assert mallory.connected.is_set()  # let in, and shown nothing
        for what in ("plain TCP, certificate listener", "plain TCP, password listener",
                     "anonymous TLS"):
            assert not spies[what].connected.is_set(), what
    finally:
        for c in [*spies.values(), user]:
            c.close()


@needs_broker
@needs_passwd
@pytest.mark.broker
def test_a_user_reaches_only_its_own_spacecraft(broker: SecureMosquitto, pki: Pki) -> None:
    """bob (ACL: sat2) publishes prompts to sat1's topic and subscribes to sat1's results while
    alice (ACL: sat1) is answered by sat1's gateway: bob's prompts never reach the gateway
    (no result, no error result for his ids) and he receives none of alice's results."""
    alice = broker.user("t-alice", "linkstack/sat1/result/#")
    bob = broker.user("t-bob", ["linkstack/sat1/result/#", "linkstack/sat1/prompt",
                                "linkstack/sat2/result/#"], name="bob")
    service = LocalEndpointService(recorded())

    async def body(gw: Gateway) -> None:
        infos = [bob.publish("linkstack/sat1/prompt", _prompt(f"b{i}", f"prompt number {i}"))
                 for i in range(2)]
        for info in infos:  # PUBACKed: the broker has taken (and dropped) them
            await asyncio.to_thread(info.wait_for_publish, 10)
            assert info.is_published()
        for i in range(2):
            alice.publish("linkstack/sat1/prompt", _prompt(f"a{i}", f"prompt number {i + 2}"))
        await until(lambda: len(results(alice)) == 2, what="alice's two results")
        await asyncio.sleep(0.5)  # anything bob could get has reached him

    try:
        asyncio.run(with_gateway(broker, service, body, **pki.gateway_options()))
        assert {k: d[0]["text"] for k, d in results(alice).items()} == {
            "a0": "answer number 2", "a1": "answer number 3"}
        assert bob.connected.is_set()
        assert bob.snapshot() == []  # neither alice's prompts nor results, nor his own
    finally:
        alice.close()
        bob.close()


@needs_broker
@needs_passwd
@pytest.mark.broker
def test_a_user_cannot_forge_results_or_status(broker: SecureMosquitto, pki: Pki) -> None:
    """The user publishes a forged result for the very prompt it is about to send, one for
    another id, and a forged retained status, each acknowledged by the broker before the
    prompt goes: a subscriber sees only what the gateway published."""
    watcher = broker.user("t-watch", ["linkstack/sat1/result/#", "linkstack/sat1/status"])
    forger = broker.user("t-forger")
    service = LocalEndpointService(recorded())
    forged = json.dumps({"id": "f1", "status": "ok", "text": "FORGED", "breakdown": {},
                         "total_s": 0.0})

    async def body(gw: Gateway) -> None:
        infos = [forger.publish("linkstack/sat1/result/f1", forged),
                 forger.publish("linkstack/sat1/result/other", forged),
                 forger.publish("linkstack/sat1/status",
                                json.dumps({"gateway": "online", "text": "FORGED"}),
                                retain=True)]
        for info in infos:  # PUBACKed: the broker has taken (and dropped) them
            await asyncio.to_thread(info.wait_for_publish, 10)
            assert info.is_published()
        forger.publish("linkstack/sat1/prompt", _prompt("f1", "prompt number 5"))
        await until(lambda: "f1" in results(watcher), what="the real result")
        await asyncio.sleep(0.5)

    try:
        asyncio.run(with_gateway(broker, service, body, **pki.gateway_options()))
        got = results(watcher)
        assert set(got) == {"f1"}
        assert [d["text"] for d in got["f1"]] == ["answer number 5"]
        statuses = [r for r in watcher.snapshot() if r.topic.endswith("/status")]
        assert statuses and all("FORGED" not in r.payload.decode() for r in statuses)
        assert all(r.doc["spacecraft"] == "sat1" for r in statuses)  # the gateway's own
        # a late subscriber's retained status is the gateway's last word, not the forgery
        late = broker.user("t-late", "linkstack/sat1/status")
        deadline = time.monotonic() + 5
        while not late.snapshot() and time.monotonic() < deadline:
            time.sleep(0.02)
        late.close()
        (retained,) = late.snapshot()
        assert retained.retain and retained.doc["gateway"] == "offline"
        assert "FORGED" not in retained.payload.decode()
    finally:
        watcher.close()
        forger.close()


# -- a gateway the broker refuses ----------------------------------------------------------------

REFUSALS = {
    # name: (listener, the gateway's options, the option named, words of the error, max s)
    "wrong CA": ("cert_port", ["--ca-file", "{pki}/rogue-ca.pem", "--cert-file",
                               "{pki}/gateway.pem", "--key-file", "{pki}/gateway.key"],
                 "--ca-file", "does not verify", 8.0),
    "wrong host name": ("wrong_name_port", ["--ca-file", "{pki}/ca.pem", "--username",
                                            "gateway"], "--broker", "does not name", 8.0),
    "wrong password": ("password_port", ["--ca-file", "{pki}/ca.pem", "--username",
                                         "gateway"], "--username", "refused user", 8.0),
    # TLS 1.3: the broker checks the client certificate after the handshake; the gateway
    # learns it from the alert while it waits for the CONNACK (aiomqtt's 10 s timeout)
    "certificate of another CA": (
        "cert_port", ["--ca-file", "{pki}/ca.pem", "--cert-file", "{pki}/rogue-gateway.pem",
                      "--key-file", "{pki}/rogue-gateway.key"],
        "--cert-file", "refused the client certificate", 25.0),
}


@needs_broker
@needs_passwd
@pytest.mark.broker
@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_gateway_exits_with_one_error_line(broker: SecureMosquitto, pki: Pki,
                                                     case: str) -> None:
    listener, options, option, words, max_s = REFUSALS[case]
    port = getattr(broker, listener)
    env = {PASSWORD_ENV: broker.passwords["gateway"] if case != "wrong password"
           else broker.passwords["alice"]}
    gw = _gateway_cli("--broker", f"mqtts://127.0.0.1:{port}",
                      *[o.format(pki=pki.folder) for o in options],
                      "--service", "local", "--backend", f"recorded:{RECORDED}", env=env)
    killer = threading.Timer(90, gw.kill)
    killer.start()
    lines: list[tuple[float, str]] = []
    try:
        assert gw.stderr is not None
        for raw in gw.stderr:
            lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))
        end = time.monotonic()
        gw.wait(timeout=10)
    finally:
        killer.cancel()
    text = "\n".join(line for _, line in lines)
    assert gw.returncode == 2, text
    banner = [t for t, line in lines if line.startswith("gateway for ")]
    assert len(banner) == 1, text  # the gateway started, and tried to connect
    errors = [line for _, line in lines if not line.startswith("gateway for ")]
    assert len(errors) == 1, text  # one line: no traceback, no retries, no client log
    assert errors[0].startswith(f"error: {option}: "), text
    assert words in errors[0], text
    assert f"127.0.0.1:{port}" in errors[0], text
    assert env[PASSWORD_ENV] not in text
    assert end - banner[0] < max_s, f"took {end - banner[0]:.1f} s to give up"


# -- files and options ---------------------------------------------------------------------------

def _copy_private(src: Path, dst: Path, mode: int) -> Path:
    dst.write_bytes(src.read_bytes())
    dst.chmod(mode)
    return dst


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660], ids=["0640", "0604", "0660"])
def test_a_key_or_password_file_others_can_read_is_refused(pki: Pki, tmp_path: Path,
                                                           mode: int) -> None:
    key = _copy_private(pki / "gateway.key", tmp_path / "shared.key", mode)
    secret = _copy_private(pki / "gateway.key", tmp_path / "shared.password", mode)
    secret.write_text("hunter2\n")
    tls = ["--broker", "mqtts://127.0.0.1:9", "--ca-file", str(pki / "ca.pem")]
    for option, args, path in [
            ("--key-file", ["--cert-file", str(pki / "gateway.pem"), "--key-file", str(key)],
             key),
            ("--password-file", ["--username", "gateway", "--password-file", str(secret)],
             secret)]:
        proc = subprocess.run([sys.executable, "-m", "linkstack", "gateway", *tls, *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"error: {option}: {path} ") and f"{mode:04o}" in lines[0]
        assert "hunter2" not in proc.stderr
    # the same files with mode 0600 are taken (the command goes on to connect, and fails
    # on the closed port: no broker there)
    key.chmod(0o600)
    GatewayConfig(tls=True, cert_file=str(pki / "gateway.pem"), key_file=str(key))
    assert client_tls_context(pki / "ca.pem", pki / "gateway.pem", key) is not None


def _option_cases(pki: Pki, tmp: Path) -> list[tuple[list[str], dict[str, str | None], str]]:
    """(arguments, environment, the option the one error line must start with)."""
    ca, cert, key = str(pki / "ca.pem"), str(pki / "gateway.pem"), str(pki / "gateway.key")
    not_pem = tmp / "not.pem"
    not_pem.write_text("hello\n")
    not_pem.chmod(0o600)
    encrypted = tmp / "encrypted.key"
    _write_private(encrypted, serialization.load_pem_private_key(
        (pki / "gateway.key").read_bytes(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    empty = tmp / "empty.password"
    _write_private(empty, b"\n")
    two_lines = tmp / "two.password"
    _write_private(two_lines, b"one\ntwo\n")
    good = tmp / "good.password"
    _write_private(good, b"sesame\n")
    tls = ["--broker", "mqtts://127.0.0.1:9"]
    plain = ["--broker", "mqtt://127.0.0.1:9"]
    no_env: dict[str, str | None] = {PASSWORD_ENV: None}
    return [
        (["--broker", "mqtts://gateway:sesame@127.0.0.1:9"], no_env, "--broker"),
        (["--broker", "mqtts://127.0.0.1:port"], no_env, "--broker"),
        (["--broker", "https://127.0.0.1:9"], no_env, "--broker"),
        ([*plain, "--ca-file", ca], no_env, "--ca-file"),
        ([*plain, "--cert-file", cert, "--key-file", key], no_env, "--cert-file"),
        ([*plain, "--username", "gateway", "--password-file", str(good)], no_env,
         "--username"),
        ([*tls, "--cert-file", cert], no_env, "--key-file"),
        ([*tls, "--key-file", key], no_env, "--cert-file"),
        ([*tls, "--ca-file", str(tmp / "missing.pem")], no_env, "--ca-file"),
        ([*tls, "--ca-file", str(not_pem)], no_env, "--ca-file"),
        ([*tls, "--ca-file", key], no_env, "--ca-file"),
        ([*tls, "--cert-file", str(not_pem), "--key-file", key], no_env, "--cert-file"),
        ([*tls, "--cert-file", cert, "--key-file", str(not_pem)], no_env, "--key-file"),
        ([*tls, "--cert-file", cert, "--key-file", str(tmp / "missing.key")], no_env,
         "--key-file"),
        ([*tls, "--cert-file", cert, "--key-file", str(pki / "alice.key")], no_env,
         "--key-file"),
        ([*tls, "--cert-file", cert, "--key-file", str(encrypted)], no_env, "--key-file"),
        ([*tls, "--password-file", str(good)], no_env, "--password-file"),
        ([*tls, "--username", "gateway"], no_env, "--username"),
        ([*tls, "--username", ""], no_env, "--username"),
        ([*tls, "--username", "gateway"], {PASSWORD_ENV: ""}, PASSWORD_ENV),
        ([*tls, "--username", "gateway", "--password-file", str(empty)], no_env,
         "--password-file"),
        ([*tls, "--username", "gateway", "--password-file", str(two_lines)], no_env,
         "--password-file"),
        ([*tls, "--username", "gateway", "--password-file", str(tmp / "missing")], no_env,
         "--password-file"),
        ([*tls, "--username", "gateway", "--password-file", str(tmp)], no_env,
         "--password-file"),
    ]


def test_bad_security_options_are_one_error_line_naming_the_option(pki: Pki,
                                                                   tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from linkstack.cli import gateway as cli

    app = typer.Typer()
    cli.register(app)

    @app.callback()
    def _root() -> None:
        """(so that the command keeps its name)"""

    runner = CliRunner()
    for args, env, option in _option_cases(pki, tmp_path):
        result = runner.invoke(app, ["gateway", *args], env=env)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert isinstance(result.exception, SystemExit), (args, result.exception)
        assert len(lines) == 1 and lines[0].startswith(f"error: {option}: "), (args, lines)
        assert "sesame" not in result.output and "Traceback" not in result.output


def test_the_issue_s_tls_option_names_are_aliases(pki: Pki, tmp_path: Path) -> None:
    """--tls-ca, --tls-cert and --tls-key (issue 15's names) set --ca-file, --cert-file and
    --key-file: the same checks, the same one error line, for every case above using them."""
    import typer
    from typer.testing import CliRunner

    from linkstack.cli import gateway as cli

    app = typer.Typer()
    cli.register(app)

    @app.callback()
    def _root() -> None:
        """(so that the command keeps its name)"""

    command = typer.main.get_command(app).commands["gateway"]  # type: ignore[attr-defined]
    opts = {p.name: p.opts for p in command.params}
    assert opts["ca_file"] == ["--ca-file", "--tls-ca"]
    assert opts["cert_file"] == ["--cert-file", "--tls-cert"]
    assert opts["key_file"] == ["--key-file", "--tls-key"]
    alias = {"--ca-file": "--tls-ca", "--cert-file": "--tls-cert", "--key-file": "--tls-key"}
    runner = CliRunner()
    seen = 0
    for args, env, option in _option_cases(pki, tmp_path):
        if not set(args) & set(alias):
            continue
        renamed = [alias.get(a, a) for a in args]
        original = runner.invoke(app, ["gateway", *args], env=env)
        aliased = runner.invoke(app, ["gateway", *renamed], env=env)
        assert aliased.exit_code == original.exit_code == 2, (renamed, aliased.output)
        assert aliased.output == original.output, renamed
        assert aliased.output.startswith(f"error: {option}: ")
        seen += 1
    assert seen >= 10


# -- the library ------------------------------------------------------------------------------

def test_the_tls_context_verifies_and_checks_the_host_name(pki: Pki) -> None:
    ctx = client_tls_context(pki / "ca.pem", pki / "gateway.pem", pki / "gateway.key")
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    # only the CA given is trusted, not the system's
    assert [c["subject"] for c in ctx.get_ca_certs()] == [
        ((("commonName", "linkstack test CA"),),)]
    system = client_tls_context()
    assert system.verify_mode == ssl.CERT_REQUIRED and system.check_hostname


def test_security_settings_need_tls_and_keep_the_password_out_of_repr() -> None:
    config = GatewayConfig(tls=True, username="gateway", password="sesame")
    assert "sesame" not in repr(config)
    for bad, key in [({"ca_file": "ca.pem"}, "ca_file"),
                     ({"username": "u", "password": "p"}, "username"),
                     ({"tls": True, "cert_file": "c.pem"}, "key_file"),
                     ({"tls": True, "username": "u"}, "password"),
                     ({"tls": True, "password": "p"}, "username")]:
        with pytest.raises(ConfigError) as err:
            GatewayConfig(**bad)
        assert err.value.key == key


@needs_broker
@needs_passwd
@pytest.mark.broker
def test_the_password_stays_out_of_the_logs(broker: SecureMosquitto, pki: Pki,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """The in-process gateway logging everything (its own and the MQTT client's DEBUG
    records) through a refused attempt and a served prompt: no password anywhere."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="mqtt")  # aiomqtt sets it to WARNING
    good, wrong = broker.passwords["gateway"], broker.passwords["mallory"]
    options = {"tls": True, "ca_file": str(pki / "ca.pem"), "username": "gateway",
               "port": broker.password_port}

    async def refused() -> ConfigError:
        gw = Gateway(LocalEndpointService(recorded()), GatewayConfig(**options, password=wrong))
        with pytest.raises(ConfigError) as err:
            await asyncio.wait_for(gw.run(), 30)
        await gw.service.aclose()  # type: ignore[attr-defined]
        return err.value

    err = asyncio.run(refused())
    assert err.key == "username" and wrong not in str(err)
    user = broker.user("t-alice", "linkstack/sat1/result/#")

    async def body(gw: Gateway) -> None:
        user.publish("linkstack/sat1/prompt", _prompt("log-1", "prompt number 1"))
        await until(lambda: "log-1" in results(user), what="the result")

    try:
        gw = asyncio.run(with_gateway(broker, LocalEndpointService(recorded()), body,
                                      **{**options, "password": good}))
    finally:
        user.close()
    assert results(user)["log-1"][0]["text"] == "answer number 1"
    assert "Sending CONNECT" in caplog.text  # the client's DEBUG records were captured
    for secret in (good, wrong):
        assert secret not in caplog.text
        assert secret not in repr(gw.config) and secret not in json.dumps(gw.status_message())
