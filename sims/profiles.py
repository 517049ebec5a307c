"""Named link profiles: physical-layer defaults of a link direction.

The profiles live in ``sims/scenarios/profiles.toml`` (package data), one table per
profile, each figure documented there with its public source.  A scenario's
``[links.<name>]`` names a profile and overrides any of its keys; a scenario may also
define or amend profiles in its own ``[profiles.<name>]`` tables.  Validation is done
by :mod:`linkstack.sims.scenario` (errors name ``profiles.<name>.<key>``).

Built-in profiles:

=======================  =====================================================================
``s-band-tc-uplink``     64 kbit/s TC uplink, BER 1e-6
``x-band-tm-downlink``   320 Mbit/s X-band downlink, Viterbi-like bursts (Gilbert–Elliott)
``laser-isl``            1.8 Gbit/s optical ISL (EDRS LCT), ms fades, pointing losses
=======================  =====================================================================
"""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from linkstack.errors import ConfigError

__all__ = ["PROFILE_FILE", "load_profiles", "profile", "profile_names"]

PROFILE_FILE = "profiles.toml"
"""Name of the profile file in the package's ``scenarios`` folder."""

_cache: dict[str, dict[str, Any]] | None = None


def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        text = resources.files("linkstack.sims").joinpath("scenarios", PROFILE_FILE).read_text(
            encoding="utf-8"
        )
        where = PROFILE_FILE
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", key=where) from None
    unknown = set(data) - {"profiles"}
    if unknown:
        raise ConfigError("unknown key (a profile file holds [profiles.<name>] tables)",
                          key=sorted(unknown)[0])
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError("must be a table", key="profiles")
    for name, table in profiles.items():
        if not isinstance(table, dict):
            raise ConfigError("a profile must be a table", key=f"profiles.{name}")
    return profiles


def load_profiles(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """All profiles as raw TOML tables (a deep copy; built-in file unless ``path``)."""
    global _cache
    if path is not None:
        return _read(path)
    if _cache is None:
        _cache = _read(None)
    return copy.deepcopy(_cache)


def profile_names() -> list[str]:
    """Names of the built-in profiles."""
    return sorted(load_profiles())


def profile(name: str) -> dict[str, Any]:
    """The raw table of built-in profile ``name``."""
    profiles = load_profiles()
    if name not in profiles:
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(sorted(profiles))}",
                          key=f"profiles.{name}")
    return profiles[name]
