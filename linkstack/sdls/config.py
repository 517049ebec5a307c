"""The SA file (TOML): the managed parameters of every SA (355.0-B-2 §5), keys named by id.

Keys are *not* in this file: it names them by Key ID, and the key file (see
:mod:`linkstack.sdls.keys`) holds their values. Format::

    key_file = "keys.toml"              # optional, relative to this file

    [[sa]]
    spi = 9
    frame = "tc"                        # tc | tm | aos | uslp
    scid = 3
    vcids = [0, 1]                      # channels the SA serves
    service = "authenticated_encryption"  # | "authentication" | "encryption"
    algorithm = "aes-gcm"               # | "aes-cmac" | "hmac-sha256"
    key_id = 136                        # absent while unkeyed
    state = "operational"               # unkeyed | keyed | operational (default: keyed,
                                        # or unkeyed without key_id)
    iv_length = 12                      # octets; iv_transmitted_length defaults to it
    arsn_length = 0                     # octets; arsn_transmitted_length defaults to it
    arsn_window = 5
    pad_length_field_length = 0
    mac_length = 16
    auth_mask = "ffff..."               # hex, from the first frame octet (default: none)
    auth_mask_fill = "ff"               # mask for octets past auth_mask: "ff" or "00"
    iv = "b6ac8e4963f49207ffd6374b"     # last IV sent/accepted (hex, default 0)
    arsn = "0123"                       # last ARSN sent/accepted (hex, default 0)
    name = "tc-up"                      # optional label, unique in the file (a scenario's
                                        # [links.X.stack] sdls names the SA by it or its SPI)

Every error is a :class:`~linkstack.errors.ConfigError` whose ``key`` names the setting
(``sa[1].mac_length``); an unknown setting is an error naming it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from linkstack.errors import ConfigError
from linkstack.sdls.counters import CounterStore
from linkstack.sdls.keys import KeyRing, load_key_file
from linkstack.sdls.sa import FrameType, SaDatabase, SaState, SecurityAssociation
from linkstack.sdls.services import Algorithm, ServiceType

__all__ = ["find_sa", "key_file_setting", "load_sa_file", "read_sa_file", "sa_from_dict"]

_INT_FIELDS = ("spi", "scid", "key_id", "iv_length", "iv_transmitted_length", "arsn_length",
               "arsn_transmitted_length", "arsn_window", "pad_length_field_length",
               "mac_length")
_SA_FIELDS = frozenset({*_INT_FIELDS, "frame", "vcids", "service", "algorithm", "state",
                        "auth_mask", "auth_mask_fill", "iv", "arsn", "name"})
_REQUIRED = ("spi", "frame", "scid", "vcids", "service", "algorithm")
_TOP_FIELDS = frozenset({"key_file", "sa"})


def _enum(cls: Any, text: object, key: str) -> Any:
    if not isinstance(text, str):
        raise ConfigError("must be a string", key=key)
    try:
        return cls(text.strip().lower())
    except ValueError:
        names = ", ".join(m.value for m in cls)
        raise ConfigError(f"{text!r} is not one of {names}", key=key) from None


def _hex(text: object, key: str) -> bytes:
    if not isinstance(text, str):
        raise ConfigError("must be a hex string", key=key)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ConfigError("is not valid hex", key=key) from None


def sa_from_dict(entry: dict[str, Any], where: str = "sa") -> SecurityAssociation:
    """Build one SA from a TOML table; errors name ``{where}.{setting}``."""
    for name in entry:
        if name not in _SA_FIELDS:
            raise ConfigError("unknown key", key=f"{where}.{name}")
    for name in _REQUIRED:
        if name not in entry:
            raise ConfigError("missing", key=f"{where}.{name}")
    kw: dict[str, Any] = {}
    for name in _INT_FIELDS:
        if name in entry:
            value = entry[name]
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError("must be an integer", key=f"{where}.{name}")
            kw[name] = value
    vcids = entry["vcids"]
    if not isinstance(vcids, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in vcids):
        raise ConfigError("must be a list of integers", key=f"{where}.vcids")
    kw["vcids"] = frozenset(vcids)
    kw["frame"] = _enum(FrameType, entry["frame"], f"{where}.frame")
    kw["service"] = _enum(ServiceType, entry["service"], f"{where}.service")
    kw["algorithm"] = _enum(Algorithm, entry["algorithm"], f"{where}.algorithm")
    if "state" in entry:
        text = entry["state"]
        if not isinstance(text, str) or text.strip().upper() not in (
                "UNKEYED", "KEYED", "OPERATIONAL"):
            raise ConfigError(f"{text!r} is not one of unkeyed, keyed, operational",
                              key=f"{where}.state")
        kw["state"] = SaState[text.strip().upper()]
    else:
        kw["state"] = SaState.KEYED if "key_id" in entry else SaState.UNKEYED
    if "auth_mask" in entry:
        kw["auth_mask"] = _hex(entry["auth_mask"], f"{where}.auth_mask")
    if "auth_mask_fill" in entry:
        fill = _hex(entry["auth_mask_fill"], f"{where}.auth_mask_fill")
        if fill not in (b"\x00", b"\xff"):
            raise ConfigError('must be "00" or "ff"', key=f"{where}.auth_mask_fill")
        kw["auth_mask_fill"] = fill[0]
    for name in ("iv", "arsn"):
        if name in entry:
            kw[name] = int.from_bytes(_hex(entry[name], f"{where}.{name}"), "big")
    if "name" in entry:
        if not isinstance(entry["name"], str):
            raise ConfigError("must be a string", key=f"{where}.name")
        kw["name"] = entry["name"]
    try:
        return SecurityAssociation(**kw)
    except ConfigError as exc:
        raise ConfigError(exc.reason, key=f"{where}.{exc.key}") from None


def _read(p: Path) -> tuple[dict[str, Any], list[tuple[str, SecurityAssociation]]]:
    """The SA file's top-level table and its SAs (checked one by one, no keys needed)."""
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read SA file: {exc.strerror}", key=str(p)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (TOML must be): octet {exc.start}", key=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", key=str(p)) from None
    for name in doc:
        if name not in _TOP_FIELDS:
            raise ConfigError(f"unknown key in {p}", key=name)
    entries = doc.get("sa", [])
    if not isinstance(entries, list):
        raise ConfigError(f"must be an array of tables ([[sa]]) in {p}", key="sa")
    sas: list[tuple[str, SecurityAssociation]] = []
    names: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"sa[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError("must be a table", key=where)
        try:
            sa = sa_from_dict(entry, where)
        except ConfigError as exc:
            raise ConfigError(f"{exc.reason} ({p})", key=exc.key) from None
        if sa.name is not None:
            if sa.name in names:
                raise ConfigError(f"name {sa.name!r} used twice ({p})", key=f"{where}.name")
            names.add(sa.name)
        sas.append((where, sa))
    return doc, sas


def read_sa_file(path: str | os.PathLike[str]) -> list[SecurityAssociation]:
    """The SAs of an SA file, checked one by one, without their keys.

    For planning (frame sizes from each SA's overhead, names): nothing here can secure or
    verify a frame. :func:`load_sa_file` gives the working database.
    """
    return [sa for _, sa in _read(Path(path))[1]]


def key_file_setting(path: str | os.PathLike[str]) -> Path | None:
    """The SA file's own ``key_file`` setting (relative to the SA file), or None."""
    p = Path(path)
    doc, _ = _read(p)
    if "key_file" not in doc:
        return None
    if not isinstance(doc["key_file"], str):
        raise ConfigError("must be a path string", key="key_file")
    return p.parent / doc["key_file"]


def find_sa(sas: Iterable[SecurityAssociation], ref: int | str) -> SecurityAssociation | None:
    """The SA whose SPI (an int, or a string of digits) or name is ``ref``, or None."""
    if isinstance(ref, str) and ref.isdigit():
        ref = int(ref)
    for sa in sas:
        if (sa.spi == ref) if isinstance(ref, int) else (sa.name == ref):
            return sa
    return None


def load_sa_file(path: str | os.PathLike[str], key_file: str | os.PathLike[str] | None = None,
                 *, keys: KeyRing | None = None, counters: CounterStore | None = None,
                 spis: Iterable[int] | None = None) -> SaDatabase:
    """Load an SA file and its key file into an :class:`SaDatabase`.

    The key file is ``key_file`` if given, else the file's ``key_file`` setting (relative
    to the SA file), else ``keys`` (an already loaded ring), else no keys. ``counters``:
    the counter store of a sending end (:mod:`linkstack.sdls.counters`). ``spis``: only
    these SAs go into the database (every SA of the file is still checked) — e.g. the one SA
    of one direction of a link, so that the database verifies nothing secured for another.
    """
    p = Path(path)
    doc, sas = _read(p)
    if key_file is None and "key_file" in doc:
        if not isinstance(doc["key_file"], str):
            raise ConfigError("must be a path string", key="key_file")
        key_file = p.parent / doc["key_file"]
    wanted = None if spis is None else set(spis)
    if wanted is not None:
        missing = wanted - {sa.spi for _, sa in sas}
        if missing:
            raise ConfigError(f"no SA {min(missing)} in {p}", key="spi")
    ring = load_key_file(key_file) if key_file is not None else (keys or KeyRing())
    db = SaDatabase(ring, counters=counters)
    for where, sa in sas:
        if wanted is not None and sa.spi not in wanted:
            continue
        try:
            db.add(sa)
        except ConfigError as exc:
            key = exc.key if exc.key.startswith(where) else f"{where}.{exc.key}"
            raise ConfigError(f"{exc.reason} ({p})", key=key) from None
    return db
