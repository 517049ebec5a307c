"""The gateway's prompt journal: what it took and has not answered, on disk.

The broker forgets a QoS 1 prompt once the gateway has acknowledged it, so a gateway *process*
that dies afterwards would lose it (:mod:`linkstack.gateway.mqtt`). With a journal the gateway
writes each prompt it takes (``taken``) before working on it, the result once the link gave
it (``result``), and notes its answer (``answered``) once the broker has acknowledged the
result; a gateway started on the same journal publishes the results it had and forwards the
other prompts taken and not answered again. Results are then at least once across gateway
crashes too, and a result that comes twice (like any QoS 1 message) comes twice the same,
octet for octet: a subscriber can drop a repeated id.

The file is JSON lines, appended and flushed record by record (``fsync`` too with
``sync=True``, to survive a power cut, not just a process crash)::

    {"taken": "<id>", "prompt": "<the prompt message as received>"}
    {"result": "<id>", "message": "<the result message as published>"}
    {"answered": "<id>"}

On opening, the file is rewritten (mode 0600: prompts are the users' data) with the pending
prompts (and their results) only, and so it is while the gateway runs, whenever the records of
answered prompts make up more than half of a file over ``compact_bytes`` (1 MiB): the file
stays under about twice the pending prompts' records (at most ``max_queued`` of them, see
:class:`linkstack.gateway.mqtt.GatewayConfig`) however many prompts pass through, and the
rewriting costs at most one octet written per octet appended. (Before, a gateway that ran
3,000 prompts of 20 kB ended with a 62 MB journal of answered prompts.) The rewrite is atomic
(a new file, ``fsync``, then renamed over the old one). A line that does not parse
(the tail of a record cut by a crash) is skipped and counted in :attr:`PromptJournal.skipped`.
The gateway writes ``taken`` within the MQTT client's message callback, before the client
acknowledges the prompt (PUBACK): a prompt the broker has forgotten is in the journal.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from linkstack.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["COMPACT_BYTES", "PromptJournal"]

COMPACT_BYTES = 1 << 20  # below this size the file is not rewritten while the gateway runs


class PromptJournal:
    """An append-only record of the prompts taken and answered (see module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, sync: bool = False,
                 compact_bytes: int = COMPACT_BYTES) -> None:
        self.path = Path(path)
        self.sync = sync
        self.compact_bytes = compact_bytes
        self.skipped = 0
        self.compactions = 0  # rewrites while running (not counting the one on opening)
        self._pending: dict[str, bytes] = {}
        self._results: dict[str, bytes] = {}  # pending ids whose result is known
        self._live: dict[str, int] = {}  # pending id -> octets of its records in the file
        self._size = 0  # octets in the file
        try:
            if self.path.exists():
                self._load()
            self._rewrite()
        except OSError as exc:
            raise ConfigError(f"{self.path}: {exc.strerror or exc}", key="journal") from None

    def _load(self) -> None:
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                    if "taken" in record:
                        self._pending[str(record["taken"])] = record["prompt"].encode()
                    elif "result" in record:
                        if str(record["result"]) in self._pending:
                            self._results[str(record["result"])] = record["message"].encode()
                    elif "answered" in record:
                        self._pending.pop(str(record["answered"]), None)
                        self._results.pop(str(record["answered"]), None)
                    else:
                        raise ValueError("neither taken, result nor answered")
                except (ValueError, TypeError, KeyError, AttributeError):
                    self.skipped += 1

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        # the prompts are the users' data: readable by the gateway's user only (mode 0600)
        tmp.unlink(missing_ok=True)  # (a crash's leftover keeps its mode otherwise)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._live.clear()
        with open(fd, "wb") as f:
            for key, prompt in self._pending.items():
                data = self._line({"taken": key, "prompt": prompt.decode()})
                if key in self._results:
                    data += self._line({"result": key, "message": self._results[key].decode()})
                f.write(data)
                self._live[key] = len(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        self._size = sum(self._live.values())

    @staticmethod
    def _line(record: dict[str, str]) -> bytes:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode()

    def _write(self, record: dict[str, str]) -> int:
        """Append one record; its length in octets."""
        # opened per record (prompts come at most tens per second): nothing stays open, and
        # the record has reached the operating system when this returns
        data = self._line(record)
        with self.path.open("ab") as f:
            f.write(data)
            f.flush()
            if self.sync:
                os.fsync(f.fileno())
        self._size += len(data)
        return len(data)

    @property
    def size(self) -> int:
        """Octets in the file."""
        return self._size

    def _compact(self) -> None:
        """Rewrite the file with the pending prompts only when answered ones are the most."""
        if self._size > self.compact_bytes and self._size > 2 * sum(self._live.values()):
            try:
                self._rewrite()
            except OSError as exc:  # the appended file is still whole: go on with it
                log.warning("journal %s not compacted: %s", self.path, exc)
                return
            self.compactions += 1

    def pending(self) -> list[bytes]:
        """The prompt messages taken and not answered, in the order they were taken."""
        return list(self._pending.values())

    def pending_results(self) -> list[tuple[bytes, bytes | None]]:
        """(prompt message, result message or None) of each prompt taken and not answered,
        in the order they were taken: a result known is published again as it was, the
        others are forwarded again."""
        return [(prompt, self._results.get(key)) for key, prompt in self._pending.items()]

    def taken(self, key: str, prompt: bytes) -> None:
        """Record a prompt message (valid UTF-8 JSON) before working on it."""
        if key not in self._pending:
            self._pending[key] = bytes(prompt)
            self._live[key] = self._write({"taken": key, "prompt": prompt.decode()})

    def result(self, key: str, message: bytes) -> None:
        """Record the result message (UTF-8 JSON) of a prompt taken, before it is published."""
        if key in self._pending and key not in self._results:
            self._results[key] = bytes(message)
            self._live[key] += self._write({"result": key, "message": message.decode()})

    def answered(self, key: str) -> None:
        """Record that the broker has the result of ``key``."""
        self._results.pop(key, None)
        if self._pending.pop(key, None) is not None:
            self._live.pop(key, None)
            self._write({"answered": key})
            self._compact()
