"""Persistent IV/ARSN counters of the sending end: never reuse a value across restarts.

AES-GCM loses all confidentiality and integrity if one (key, IV) pair is used twice, and a
reused ARSN is rejected by the receiver's anti-replay window (355.0-B-2 §3.5). The sender's
counters therefore outlive the process. linkstack uses **block reservation**:

- a :class:`FileCounterStore` holds, per SPI, the highest IV and ARSN the sender has
  *reserved*; before the sender uses a value above the reservation it reserves the next
  ``block`` values and writes the new high-water mark to the state file **atomically**
  (write a temporary file, ``fsync``, ``os.replace``, ``fsync`` the directory) — the write
  completes before the frame using the value exists;
- on restart the SA resumes *after* the reservation, skipping at most ``block - 1`` values
  that were reserved but never used. No value is ever used twice.

``block=1`` writes the file before every frame (slow, nothing skipped); the default 256
writes once per 256 frames. Only a *sending* SA database should get a store: on a receiver
the values are the last *accepted* ones, and a reservation would make it skip good frames.

The engine itself stays sans-IO: it only calls :meth:`CounterStore.reserve`; the file I/O
lives here, behind that one method, and :class:`MemoryCounterStore` does none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from linkstack.errors import ConfigError

__all__ = ["DEFAULT_BLOCK", "CounterStore", "FileCounterStore", "MemoryCounterStore"]

DEFAULT_BLOCK = 256
_FORMAT_VERSION = 1


class CounterStore(Protocol):
    """Where a sender records the IV/ARSN values it may use."""

    block: int

    def reserved(self, spi: int) -> tuple[int, int] | None:
        """``(iv, arsn)`` reserved so far for ``spi``, or None if nothing was reserved."""

    def reserve(self, spi: int, iv: int, arsn: int) -> None:
        """Durably record that values up to ``(iv, arsn)`` may be used; returns once safe."""


class MemoryCounterStore:
    """A store without persistence (tests, simulations, receivers)."""

    def __init__(self, block: int = DEFAULT_BLOCK) -> None:
        if block < 1:
            raise ConfigError(f"{block} < 1", key="counter_block")
        self.block = block
        self.writes = 0
        self._marks: dict[int, tuple[int, int]] = {}

    def reserved(self, spi: int) -> tuple[int, int] | None:
        return self._marks.get(spi)

    def reserve(self, spi: int, iv: int, arsn: int) -> None:
        self._marks[spi] = (iv, arsn)
        self.writes += 1


class FileCounterStore:
    """Reservations kept in a small JSON state file, replaced atomically on every write.

    File content: ``{"version": 1, "reserved": {"<spi>": {"iv": n, "arsn": m}}}``. A file
    that exists but cannot be parsed is an error (:class:`ConfigError` naming the file):
    starting over from zero would reuse IVs, so the sender refuses to start instead.
    """

    def __init__(self, path: str | os.PathLike[str], block: int = DEFAULT_BLOCK) -> None:
        if block < 1:
            raise ConfigError(f"{block} < 1", key="counter_block")
        self.path = Path(path)
        self.block = block
        self.writes = 0
        self._marks: dict[int, tuple[int, int]] = self._load()

    def __repr__(self) -> str:
        return f"FileCounterStore({str(self.path)!r}, block={self.block})"

    def _load(self) -> dict[int, tuple[int, int]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"cannot read counter state: {exc.strerror}",
                              key=str(self.path)) from None
        try:
            doc = json.loads(text)
            if doc.get("version") != _FORMAT_VERSION:
                raise ValueError("unknown version")
            return {int(spi): (int(v["iv"]), int(v["arsn"]))
                    for spi, v in doc["reserved"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError("counter state file is corrupt; refusing to start (IVs could "
                              "be reused)", key=str(self.path)) from None

    def reserved(self, spi: int) -> tuple[int, int] | None:
        return self._marks.get(spi)

    def reserve(self, spi: int, iv: int, arsn: int) -> None:
        marks = dict(self._marks)
        marks[spi] = (iv, arsn)
        doc = {"version": _FORMAT_VERSION,
               "reserved": {str(k): {"iv": v[0], "arsn": v[1]} for k, v in sorted(marks.items())}}
        data = json.dumps(doc, indent=1).encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        try:
            dfd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            dfd = -1
        if dfd >= 0:
            try:
                os.fsync(dfd)
            except OSError:
                pass
            finally:
                os.close(dfd)
        self._marks = marks
        self.writes += 1
