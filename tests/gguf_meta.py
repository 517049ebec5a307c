"""Read the metadata of a GGUF file, and copy one with a string key added (for the tests).

GGUF (llama.cpp's model file, version 3): ``GGUF``, u32 version, u64 tensor count, u64
metadata count; the metadata key/value pairs (key: u64 length + UTF-8; u32 value type;
value); the tensor infos (name, u32 dims, u64 each dim, u32 type, u64 offset into the data);
padding to ``general.alignment`` (default 32) from the file start; the tensor data. Tensor
offsets are relative to the data, so a key can be added by rewriting the header and copying
the data unchanged. Little-endian throughout.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import BinaryIO

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
STRING, ARRAY = 8, 9


def _read(f: BinaryIO, fmt: str) -> int | float | bool:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF")
    return struct.unpack(fmt, data)[0]


def _string(f: BinaryIO) -> str:
    n = int(_read(f, "<Q"))
    return f.read(n).decode("utf-8")


def _value(f: BinaryIO, vtype: int) -> object:
    if vtype in _SCALARS:
        return _read(f, _SCALARS[vtype])
    if vtype == STRING:
        return _string(f)
    if vtype == ARRAY:
        etype = int(_read(f, "<I"))
        count = int(_read(f, "<Q"))
        return [_value(f, etype) for _ in range(count)]
    raise ValueError(f"unknown GGUF value type {vtype}")


def _layout(f: BinaryIO) -> tuple[int, int, dict[str, object], int, int]:
    """(version, tensor count, metadata, end of the metadata, end of the tensor infos)."""
    if f.read(4) != b"GGUF":
        raise ValueError("not a GGUF file")
    version = int(_read(f, "<I"))
    n_tensors = int(_read(f, "<Q"))
    n_kv = int(_read(f, "<Q"))
    meta: dict[str, object] = {}
    for _ in range(n_kv):
        key = _string(f)
        meta[key] = _value(f, int(_read(f, "<I")))
    kv_end = f.tell()
    for _ in range(n_tensors):
        _string(f)
        n_dims = int(_read(f, "<I"))
        f.seek(8 * n_dims + 4 + 8, 1)
    return version, n_tensors, meta, kv_end, f.tell()


def read_metadata(path: Path) -> dict[str, object]:
    """Every metadata key and its value (arrays as lists)."""
    with path.open("rb") as f:
        return _layout(f)[2]


def _pack_string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def copy_with_string(src: Path, dst: Path, key: str, value: str) -> None:
    """Copy the GGUF ``src`` to ``dst`` with the string ``key`` set to ``value`` (added at the
    end of the metadata; ``key`` must not be there already)."""
    with src.open("rb") as f:
        version, n_tensors, meta, kv_end, infos_end = _layout(f)
        if key in meta:
            raise ValueError(f"{key} is already in {src}")
        alignment = int(meta.get("general.alignment", 32))  # type: ignore[call-overload]
        data_start = -(-infos_end // alignment) * alignment
        f.seek(24)
        kvs = f.read(kv_end - 24)
        infos = f.read(infos_end - kv_end)
        head = (
            b"GGUF"
            + struct.pack("<IQQ", version, n_tensors, len(meta) + 1)
            + kvs
            + _pack_string(key)
            + struct.pack("<I", STRING)
            + _pack_string(value)
            + infos
        )
        head += b"\0" * (-len(head) % alignment)
        with dst.open("wb") as out:
            out.write(head)
            f.seek(data_start)
            shutil.copyfileobj(f, out, 1 << 22)
