"""TLS and credentials of the gateway's broker connection.

The gateway talks to the broker over TLS (``mqtts://``) with Python's :mod:`ssl`: TLS 1.2 or
newer, the broker's certificate verified against ``ca_file`` (or the system's trusted CAs when
none is given) and its host name checked against the host of the broker URL. It proves who it
is with a client certificate (``cert_file`` + ``key_file``), a user name and password, or both;
the broker's access control list then decides what that identity may read and publish.

Secrets stay out of sight: a private key file or a password file that gives any access to group
or others is refused (like ssh does with its keys), a password is never taken from the command
line, and :class:`~linkstack.gateway.mqtt.GatewayConfig` leaves it out of its ``repr``.
Every problem is a :class:`~linkstack.errors.ConfigError` whose ``key`` names the setting
(``ca_file``, ``cert_file``, ``key_file``, ``password_file``, ``broker``, ``username``).
"""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

from aiomqtt.exceptions import MqttConnectError

from linkstack.errors import ConfigError

__all__ = [
    "PASSWORD_ENV",
    "check_private_file",
    "client_tls_context",
    "read_password_file",
    "refusal",
    "reset_hint",
]

PASSWORD_ENV = "LINKSTACK_MQTT_PASSWORD"
"""The environment variable ``linkstack gateway --username`` takes the password from when no
``--password-file`` is given."""

# CONNACK return codes (MQTT 3.1.1 §3.2.2.3) and reason codes (MQTT 5 §3.2.2.2) that say the
# credentials were refused: retrying with the same ones cannot help
_REFUSED_CREDENTIALS = frozenset({4, 5, 0x86, 0x87})


def check_private_file(path: str | os.PathLike[str], key: str, *,
                       pipe: bool = False) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is a regular file (or, with ``pipe``, a
    pipe such as the shell's ``<(command)``) that only its owner may read or write (mode 0600
    or 0400); else a :class:`ConfigError` naming the file."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ConfigError(f"{p}: {exc.strerror or exc}", key=key) from None
    if not (stat.S_ISREG(st.st_mode) or (pipe and stat.S_ISFIFO(st.st_mode))):
        raise ConfigError(f"{p}: not a regular file", key=key)
    mode = stat.S_IMODE(st.st_mode)
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(f"{p} is accessible to group or others (mode {mode:04o}); it holds "
                          f"a secret: chmod 600 {p}", key=key)
    return p


def read_password_file(path: str | os.PathLike[str], key: str = "password_file") -> str:
    """The password in ``path``: its one line of UTF-8 text (the newline that ends it is
    not part of it), after :func:`check_private_file`."""
    p = check_private_file(path, key, pipe=True)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: {exc.strerror or exc}", key=key) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text", key=key) from None
    lines = text.splitlines()
    password = lines[0] if lines else ""
    if not password:
        raise ConfigError(f"{p}: the first line (the password) is empty", key=key)
    if any(line.strip() for line in lines[1:]):
        raise ConfigError(f"{p}: more than one line; the file holds the password only", key=key)
    return password


def _read_text(path: Path, key: str) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}", key=key) from None


def _encrypted_key() -> bytes:
    raise ConfigError("the private key is encrypted with a passphrase; give an unencrypted key "
                      "file readable by its owner only", key="key_file")


def client_tls_context(ca_file: str | os.PathLike[str] | None = None,
                       cert_file: str | os.PathLike[str] | None = None,
                       key_file: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """The :class:`ssl.SSLContext` of a client that verifies its broker.

    TLS 1.2 at least; the broker's certificate must chain to ``ca_file`` (PEM, one CA or
    more; the system's trusted CAs when ``None``) and name the host connected to. With
    ``cert_file`` and ``key_file`` (PEM, both or neither; the key unencrypted and private to
    its owner) the client presents that certificate.
    """
    if (cert_file is None) != (key_file is None):
        missing = "key_file" if key_file is None else "cert_file"
        raise ConfigError("a client certificate needs both cert_file and key_file",
                          key=missing)
    if ca_file is None:
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        except ssl.SSLError as exc:
            raise ConfigError(f"cannot load the system's CA certificates: {_ssl_reason(exc)}",
                              key="ca_file") from None
    else:
        ca = Path(ca_file)
        if "-----BEGIN CERTIFICATE-----" not in _read_text(ca, "ca_file"):
            raise ConfigError(f"{ca}: no PEM certificate in it", key="ca_file")
        try:
            # this CA only: a certificate that a public CA gave the broker is not good enough
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{ca}: not a usable CA certificate ({_ssl_reason(exc)})",
                              key="ca_file") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert_file is not None and key_file is not None:
        cert = Path(cert_file)
        key = check_private_file(key_file, "key_file")
        if "-----BEGIN CERTIFICATE-----" not in _read_text(cert, "cert_file"):
            raise ConfigError(f"{cert}: no PEM certificate in it", key="cert_file")
        key_text = _read_text(key, "key_file")
        if "PRIVATE KEY-----" not in key_text:
            raise ConfigError(f"{key}: no PEM private key in it", key="key_file")
        if "BEGIN ENCRYPTED PRIVATE KEY" in key_text or "Proc-Type: 4,ENCRYPTED" in key_text:
            _encrypted_key()
        try:
            ctx.load_cert_chain(str(cert), str(key), password=_encrypted_key)
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                raise ConfigError(f"{key} is not the private key of the certificate {cert}",
                                  key="key_file") from None
            raise ConfigError(f"{cert} with {key}: not a usable certificate and key "
                              f"({_ssl_reason(exc)})", key="cert_file") from None
        except OSError as exc:
            raise ConfigError(f"{cert}: {exc.strerror or exc}", key="cert_file") from None
    return ctx


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message).rstrip(".")
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc``, the leaves of an exception group, and what each was raised from or during
    (aiomqtt re-raises socket errors as ``MqttError(str(exc)) from None``)."""
    out: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e in out:
            continue
        out.append(e)
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                todo.append(nxt)
    return out


def refusal(exc: BaseException, *, host: str, port: int, username: str | None,
            client_certificate: bool, socket_error: str | None = None) -> ConfigError | None:
    """The :class:`ConfigError` to stop with if the failed connection attempt ``exc`` was the
    broker or its certificate refusing this configuration (retrying cannot help); ``None`` if
    it may be passing (the broker down, restarting, unreachable).

    ``socket_error`` is the last error the MQTT client logged while it waited for the
    broker's answer: a TLS alert there (the broker refusing the client certificate, or
    wanting one, after a TLS 1.3 handshake) is a refusal too.
    """
    where = f"broker {host}:{port}"
    for e in _causes(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            message = str(e.verify_message or e)
            if "mismatch" in message:
                return ConfigError(f"{where}: its certificate does not name {host!r} "
                                   f"({message.rstrip('.')})", key="broker")
            return ConfigError(f"{where}: its certificate does not verify against the CA "
                               f"certificates given ({message.rstrip('.')})", key="ca_file")
        if isinstance(e, ssl.SSLError):
            return ConfigError(f"{where}: TLS handshake failed ({_ssl_reason(e)}); is it a TLS "
                               "listener, and does it accept this client certificate?",
                               key="cert_file" if client_certificate else "broker")
        if isinstance(e, MqttConnectError) and e.rc is not None \
                and _code(e.rc) in _REFUSED_CREDENTIALS:
            who = (f"user {username!r}" if username is not None
                   else "the client certificate" if client_certificate else "an anonymous client")
            return ConfigError(f"{where} refused {who}: {e}",
                               key="username" if username is not None
                               else "cert_file" if client_certificate else "broker")
    if socket_error is not None and "[SSL" in socket_error:
        alert = socket_error.split("]", 1)[-1].split("(_ssl.c", 1)[0].strip()
        if client_certificate:
            return ConfigError(f"{where} refused the client certificate ({alert})",
                               key="cert_file")
        return ConfigError(f"{where} ended the TLS connection ({alert}); does it require a "
                           "client certificate?", key="cert_file")
    return None


def reset_hint(exc: BaseException) -> str:
    """A hint for a TLS connection that the broker reset before the handshake ended (what
    mosquitto does on a plain-TCP listener), else ``""``."""
    if any(isinstance(e, ConnectionResetError) for e in _causes(exc)):
        return " (a plain-TCP listener? mqtts:// needs a TLS one)"
    return ""


def _code(rc: object) -> int:
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) else -1
