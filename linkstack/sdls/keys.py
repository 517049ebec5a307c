"""Keys, their states (CCSDS 355.1-B-1 §3.2, key management) and the key file.

Keys are named by a 16-bit Key ID (the identifier the Rekey SA, Key Activation and Key
Deactivation procedures carry). Their life cycle (355.1-B-1 §3.2, the session-key states)::

    PRE_ACTIVE --activate--> ACTIVE --deactivate--> DEACTIVATED

An SA may only be rekeyed with, and only protect or verify frames with, an ACTIVE key. The
numeric values are CryptoLib's ``KEY_PREACTIVE``/``KEY_ACTIVE``/``KEY_DEACTIVATED``.

The key file is separate from the SA file and must be private to its owner:
:func:`load_key_file` refuses (one line naming the file) a file that group or others may
read or write, *before* reading a byte of it. Format (TOML)::

    [[key]]
    id = 136
    value = "ef9f9284cf599eac3b119905a7d18851e7e374cf63aea04358586b0f757670f8"   # hex
    state = "active"          # optional: "pre_active", "active" (default), "deactivated"

A :class:`Key` never shows its value: ``repr``/``str`` print the id, state and length only,
and no error message quotes it.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterable, Iterator
from enum import IntEnum
from pathlib import Path

from linkstack.errors import ConfigError
from linkstack.sdls.errors import KeyFileError, SaStateError

__all__ = ["MAX_KEY_ID", "Key", "KeyRing", "KeyState", "load_key_file"]

MAX_KEY_ID = 0xFFFF
_KEY_FIELDS = frozenset({"id", "value", "state"})


class KeyState(IntEnum):
    """Session key states (355.1-B-1 §3.2); values as CryptoLib's ``KEY_*``."""

    PRE_ACTIVE = 0
    ACTIVE = 1
    DEACTIVATED = 2

    @classmethod
    def parse(cls, text: str, *, key: str) -> KeyState:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ConfigError(f"{text!r} is not one of {names}", key=key) from None


class Key:
    """One key: its id, its state and its value (never printed)."""

    __slots__ = ("_value", "key_id", "state")

    def __init__(self, key_id: int, value: bytes, state: KeyState = KeyState.ACTIVE) -> None:
        if not 0 <= key_id <= MAX_KEY_ID:
            raise ConfigError(f"{key_id!r} is outside 0..{MAX_KEY_ID}", key="key.id")
        self.key_id = key_id
        self.state = KeyState(state)
        self._value = bytes(value)

    @property
    def length(self) -> int:
        """Key length in octets."""
        return len(self._value)

    def secret(self) -> bytes:
        """The key octets. Only the cipher layer should call this."""
        return self._value

    def __repr__(self) -> str:
        return (f"Key(id={self.key_id}, state={self.state.name}, {8 * self.length}-bit, "
                "value=<redacted>)")

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("keys are not picklable")


class KeyRing:
    """The keys of one end, by Key ID, with the 355.1-B-1 key procedures."""

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self._keys: dict[int, Key] = {}
        for key in keys:
            self.add(key)

    def add(self, key: Key) -> None:
        if key.key_id in self._keys:
            raise ConfigError(f"key {key.key_id} defined twice", key="key.id")
        self._keys[key.key_id] = key

    def get(self, key_id: int) -> Key | None:
        return self._keys.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._keys)} keys: {sorted(self._keys)})"

    __str__ = __repr__

    def _require(self, key_id: int, procedure: str) -> Key:
        key = self._keys.get(key_id)
        if key is None:
            raise SaStateError(f"no key {key_id}", procedure=procedure)
        return key

    def activate(self, key_id: int) -> None:
        """Key Activation (355.1-B-1 §3.2): PRE_ACTIVE -> ACTIVE."""
        key = self._require(key_id, "activate_key")
        if key.state is not KeyState.PRE_ACTIVE:
            raise SaStateError(f"key {key_id} is {key.state.name}, only a PRE_ACTIVE key "
                               "can be activated", procedure="activate_key",
                               state=key.state.name)
        key.state = KeyState.ACTIVE

    def deactivate(self, key_id: int) -> None:
        """Key Deactivation (355.1-B-1 §3.2): ACTIVE -> DEACTIVATED."""
        key = self._require(key_id, "deactivate_key")
        if key.state is not KeyState.ACTIVE:
            raise SaStateError(f"key {key_id} is {key.state.name}, only an ACTIVE key "
                               "can be deactivated", procedure="deactivate_key",
                               state=key.state.name)
        key.state = KeyState.DEACTIVATED


def check_private(path: Path) -> None:
    """Raise :class:`KeyFileError` unless ``path`` exists and only its owner may read/write it."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeyFileError(f"cannot open key file: {exc.strerror}", path=str(path)) from None
    if not stat.S_ISREG(mode):
        raise KeyFileError("key file is not a regular file", path=str(path))
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        raise KeyFileError(
            f"key file is readable or writable by group or others (mode "
            f"{stat.S_IMODE(mode):04o}); chmod 600 it", path=str(path),
        )


def load_key_file(path: str | os.PathLike[str]) -> KeyRing:
    """Load a key file (format in the module docstring) after checking its permissions.

    Errors: :class:`KeyFileError` (permissions, unreadable, not TOML) naming the file;
    :class:`~linkstack.errors.ConfigError` naming the key (``key[2].state``) for a bad
    entry or an unknown setting. No message contains key octets.
    """
    p = Path(path)
    check_private(p)
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file: {exc.strerror}", path=str(p)) from None
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"not UTF-8 text (TOML must be): octet {exc.start}",
                           path=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise KeyFileError(f"not valid TOML: {exc}", path=str(p)) from None
    for name in doc:
        if name != "key":
            raise ConfigError(f"unknown key in {p}", key=name)
    entries = doc.get("key", [])
    if not isinstance(entries, list):
        raise ConfigError(f"must be an array of tables ([[key]]) in {p}", key="key")
    ring = KeyRing()
    for i, entry in enumerate(entries):
        where = f"key[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"must be a table in {p}", key=where)
        for name in entry:
            if name not in _KEY_FIELDS:
                raise ConfigError(f"unknown key in {p}", key=f"{where}.{name}")
        for name in ("id", "value"):
            if name not in entry:
                raise ConfigError(f"missing in {p}", key=f"{where}.{name}")
        key_id = entry["id"]
        if not isinstance(key_id, int) or isinstance(key_id, bool):
            raise ConfigError("must be an integer", key=f"{where}.id")
        text = entry["value"]
        if not isinstance(text, str):
            raise ConfigError("must be a hex string", key=f"{where}.value")
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise ConfigError("is not valid hex", key=f"{where}.value") from None
        if not value:
            raise ConfigError("is empty", key=f"{where}.value")
        state_text = entry.get("state", "active")
        if not isinstance(state_text, str):
            raise ConfigError("must be a string", key=f"{where}.state")
        state = KeyState.parse(state_text, key=f"{where}.state")
        if key_id in ring:
            raise ConfigError(f"key id {key_id} defined twice in {p}", key=f"{where}.id")
        if not 0 <= key_id <= MAX_KEY_ID:
            raise ConfigError(f"{key_id} is outside 0..{MAX_KEY_ID}", key=f"{where}.id")
        ring.add(Key(key_id, value, state))
    return ring
