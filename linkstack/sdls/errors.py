"""Errors of the SDLS package, all inside the stack's one hierarchy (:mod:`linkstack.errors`).

The receive path never raises on bad input: a frame that fails any check comes back as a
:class:`~linkstack.sdls.engine.SdlsRejected` with its reason. Exceptions are for the
*caller's* mistakes and for conditions that must stop the sender:

- :class:`~linkstack.errors.ConfigError` (``key`` names the setting): a bad SA or key file,
  an SA whose parameters do not fit together; :class:`KeyFileError` when the key file
  itself is unusable (permissions, missing).
- :class:`~linkstack.errors.EncodeError`: a frame handed to ``apply`` that cannot be
  secured (too long once the Security Header and Trailer are added, malformed header).
- :class:`SaStateError`: a 355.1-B-1 procedure (start, stop, rekey, expire, delete, set
  ARSN, key activation...) requested in a state where it is not legal, or ``apply`` with
  no operational SA for the frame's channel.
- :class:`SequenceExhaustedError`: the SA's IV or ARSN counter has reached its largest
  value; the SA must be rekeyed before it may send again (an IV is never reused).

No message of any of these ever contains key material (tested).
"""

from __future__ import annotations

from linkstack.errors import ConfigError, ProtocolError

__all__ = ["KeyFileError", "SaStateError", "SequenceExhaustedError"]


class KeyFileError(ConfigError):
    """The key file cannot be used: missing, unreadable, or readable by group/others.

    The message is one line that names the file, e.g.
    ``/etc/linkstack/keys.toml: key file is readable by group or others (mode 0644);
    chmod 600 it``.
    """

    def __init__(self, reason: str, *, path: str) -> None:
        self.path = path
        super().__init__(reason, key=path)


class SaStateError(ProtocolError):
    """A Security Association or key procedure was requested in a state that forbids it.

    Attributes:
        spi: the SA concerned (None for key procedures and channel lookups).
        procedure: the procedure name, e.g. ``"start"``, ``"rekey"``, ``"activate_key"``.
        state: the state the SA (or key) was in, by name.
    """

    def __init__(self, reason: str, *, procedure: str, spi: int | None = None,
                 state: str | None = None) -> None:
        self.spi = spi
        self.procedure = procedure
        self.state = state
        where = f"SA {spi}" if spi is not None else "SDLS"
        super().__init__(f"{where}: {procedure}: {reason}")


class SequenceExhaustedError(ProtocolError):
    """The sending SA has used its last IV or ARSN value: rekey it (355.0-B-2 §3.4)."""

    def __init__(self, spi: int, field: str) -> None:
        self.spi = spi
        self.field = field
        super().__init__(f"SA {spi}: {field} exhausted; rekey the SA before sending again")
