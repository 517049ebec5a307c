"""File manifests and the onboard model registry (upload, verify, then swap).

An upload carries a :class:`Manifest` — the file's SHA-256, its size, what it is (``model``
or ``file``) and a name — as a Message to User in its Metadata PDU (CCSDS 727.0-B-5 §3.4.1;
the value starts with :data:`MANIFEST_PREFIX`, so it cannot be taken for one of the reserved
``cfdp`` messages). CFDP's own file checksum (CRC-32) says whether the octets arrived as sent;
the manifest says whether they are the file the operator meant: the onboard side stores the
file, computes its SHA-256, compares digest and size with the manifest, and only then
installs it.

:class:`ModelRegistry` is the onboard model store: the active model and the ones before it.
:meth:`ModelRegistry.install` swaps a model in only when the transfer finished without a
fault, with all its data, and the stored file matches the manifest; otherwise the active
model stays and the refusal says why. A swap is a state change of the registry and a call of
``on_swap``: the test load (:meth:`linkstack.payload.swap.SwappableBackend.install` loads the
GGUF into the endpoint's backend). If it raises, the model is refused ("test load failed")
and the active one stays. Each model answers as :attr:`ModelInfo.model_id`, ``<name>@v<n>``:
the Result of every prompt names the model and the version that answered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

__all__ = ["MANIFEST_PREFIX", "InstallResult", "Manifest", "ModelInfo", "ModelRegistry"]

MANIFEST_PREFIX = b"linkstack-manifest:"


@dataclass(frozen=True)
class Manifest:
    """What the sender says the file is."""

    sha256: str
    size: int
    kind: str = "file"  # "model" or "file"
    name: str = ""

    @classmethod
    def of(cls, data: bytes, *, kind: str = "file", name: str = "") -> Manifest:
        return cls(hashlib.sha256(data).hexdigest(), len(data), kind, name)

    def encode(self) -> bytes:
        return MANIFEST_PREFIX + json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, value: bytes) -> Manifest | None:
        """The manifest in a Message to User value, or None (not one, or malformed)."""
        if not value.startswith(MANIFEST_PREFIX):
            return None
        try:
            raw = json.loads(value[len(MANIFEST_PREFIX):])
            manifest = cls(str(raw["sha256"]).lower(), int(raw["size"]),
                           str(raw.get("kind", "file")), str(raw.get("name", "")))
        except (ValueError, KeyError, TypeError):
            return None
        if len(manifest.sha256) != 64 or manifest.size < 0:
            return None
        return manifest

    @classmethod
    def find(cls, messages: tuple[bytes, ...] | list[bytes]) -> Manifest | None:
        for value in messages:
            manifest = cls.decode(value)
            if manifest is not None:
                return manifest
        return None


@dataclass(frozen=True)
class ModelInfo:
    """One model the registry knows."""

    name: str
    sha256: str
    size: int
    path: str
    version: int

    @property
    def model_id(self) -> str:
        """The id Prompts and Results use for this model and version: the stored file's name
        without ``.gguf``, ``@v`` and the registry version (at most 64 UTF-8 octets, the
        limit of the payload messages' ``model_id``)."""
        stem = PurePosixPath(self.path).name.removesuffix(".gguf") or "model"
        suffix = f"@v{self.version}"
        room = 64 - len(suffix)
        return stem.encode("utf-8")[:room].decode("utf-8", "ignore") + suffix


@dataclass(frozen=True)
class InstallResult:
    """What :meth:`ModelRegistry.install` did."""

    swapped: bool
    reason: str
    sha256: str
    size: int
    active: ModelInfo | None
    previous: ModelInfo | None

    def as_dict(self) -> dict[str, Any]:
        return {"swapped": self.swapped, "reason": self.reason, "sha256": self.sha256,
                "size": self.size,
                "active": asdict(self.active) if self.active else None,
                "previous": asdict(self.previous) if self.previous else None}


@dataclass
class ModelRegistry:
    """The onboard models: the active one, and every one installed before it."""

    active: ModelInfo | None = None
    history: list[ModelInfo] = field(default_factory=list)
    rejected: list[InstallResult] = field(default_factory=list)
    on_swap: Callable[[ModelInfo, bytes], None] | None = None

    def install(self, path: str, data: bytes | None, manifest: Manifest | None, *,
                transfer_ok: bool, name: str | None = None) -> InstallResult:
        """Verify the stored file ``data`` (None: nothing stored) against ``manifest`` and
        make it the active model if, and only if, everything matches."""
        digest = hashlib.sha256(data).hexdigest() if data is not None else ""
        size = len(data) if data is not None else 0
        reason = ""
        if data is None:
            reason = "nothing stored"
        elif not transfer_ok:
            reason = "transfer incomplete or faulted (CFDP)"
        elif manifest is None:
            reason = "no manifest (SHA-256 and size) in the Metadata"
        elif size != manifest.size:
            reason = f"size {size} != manifest size {manifest.size} (truncated?)"
        elif digest != manifest.sha256:
            reason = "SHA-256 mismatch"
        if reason:
            result = InstallResult(False, reason, digest, size, self.active, None)
            self.rejected.append(result)
            return result
        assert data is not None and manifest is not None
        previous = self.active
        version = (previous.version + 1) if previous else 1
        info = ModelInfo(name or manifest.name or path, digest, size, path, version)
        if self.on_swap is not None:
            try:
                self.on_swap(info, data)  # the test load
            except Exception as exc:  # whatever the loader raises: refused, nothing changes
                detail = (str(exc).strip().splitlines() or [""])[0]
                result = InstallResult(False, f"test load failed: {type(exc).__name__}"
                                       + (f": {detail}" if detail else ""), digest, size,
                                       self.active, None)
                self.rejected.append(result)
                return result
        if previous is not None:
            self.history.append(previous)
        self.active = info
        return InstallResult(True, "verified and swapped in", digest, size, info, previous)
