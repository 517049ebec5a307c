"""An in-memory filestore for cfdp-py (its ``VirtualFilestore`` interface).

The simulator keeps both ends' files in memory: the ground's file to upload and the onboard
storage, so that a run touches no disk and a test can look at (or damage) what was stored.
The file checksums of CCSDS 727.0-B-5 §4.2.2 are computed here: the modular checksum, CRC-32
(``fastcrc``'s ISO-HDLC, the polynomial 0x04C11DB7 of checksum type 3) and CRC-32C.
"""

from __future__ import annotations

import struct
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import fastcrc
from cfdppy.filestore import VirtualFilestore
from spacepackets.cfdp.defs import NULL_CHECKSUM_U32, ChecksumType
from spacepackets.cfdp.tlv import FilestoreResponseStatusCode as Fs

__all__ = ["MemoryFilestore", "file_checksum"]


def file_checksum(kind: ChecksumType, data: bytes) -> bytes:
    """The CFDP file checksum of ``data`` (4 octets, big-endian)."""
    if kind == ChecksumType.NULL_CHECKSUM:
        return NULL_CHECKSUM_U32
    if kind == ChecksumType.MODULAR:
        total = 0
        for i in range(0, len(data), 4):
            total += int.from_bytes(data[i:i + 4].ljust(4, b"\0"), "big")
        return struct.pack("!I", total % (1 << 32))
    if kind == ChecksumType.CRC_32:
        return struct.pack("!I", fastcrc.crc32.iso_hdlc(bytes(data)))
    if kind == ChecksumType.CRC_32C:
        return struct.pack("!I", fastcrc.crc32.iscsi(bytes(data)))
    raise ValueError(f"checksum type {kind!r} not supported")


def _key(path: Path | str) -> str:
    return str(PurePosixPath(str(path)))


class MemoryFilestore(VirtualFilestore):
    """Files as byte arrays keyed by their POSIX path; directories are implicit.

    ``capacity`` (octets, None: unlimited) is the size of the store: a CFDP receiver refuses
    a file that would not fit (Filestore Rejection, :meth:`has_room`), and
    :meth:`write_data` beyond it raises :class:`PermissionError`, cfdp-py's filestore
    refusal."""

    def __init__(self, files: dict[str, bytes] | None = None, *,
                 capacity: int | None = None) -> None:
        if capacity is not None and capacity < 0:
            raise ValueError("capacity must be >= 0 octets")
        self.capacity = capacity
        self.files: dict[str, bytearray] = {}
        for name, data in (files or {}).items():
            self.files[_key(name)] = bytearray(data)

    # -- space ------------------------------------------------------------------------------
    def used(self) -> int:
        """Octets stored."""
        return sum(len(d) for d in self.files.values())

    def free(self) -> int | None:
        """Octets left (None: unlimited)."""
        return None if self.capacity is None else max(0, self.capacity - self.used())

    def has_room(self, path: Path | str, size: int) -> bool:
        """Whether a file of ``size`` octets fits as ``path`` (replacing what is there)."""
        if self.capacity is None:
            return True
        existing = len(self.files.get(_key(path), b""))
        return self.used() - existing + size <= self.capacity

    # -- convenience ------------------------------------------------------------------------
    def put(self, path: str, data: bytes) -> None:
        self.files[_key(path)] = bytearray(data)

    def get(self, path: str) -> bytes | None:
        data = self.files.get(_key(path))
        return None if data is None else bytes(data)

    def names(self) -> list[str]:
        return sorted(self.files)

    # -- VirtualFilestore -------------------------------------------------------------------
    def read_data(self, file: Path, offset: int | None, read_len: int | None = None) -> bytes:
        data = self.files.get(_key(file))
        if data is None:
            raise FileNotFoundError(file)
        start = offset or 0
        end = len(data) if read_len is None else start + read_len
        return bytes(data[start:end])

    def read_from_opened_file(self, bytes_io: BinaryIO, offset: int, read_len: int) -> bytes:
        bytes_io.seek(offset)
        return bytes_io.read(read_len)

    def is_directory(self, path: Path) -> bool:
        key = _key(path).rstrip("/") + "/"
        return key == "./" or any(name.startswith(key) for name in self.files)

    def filename_from_full_path(self, path: Path) -> str | None:
        return PurePosixPath(str(path)).name or None

    def file_exists(self, path: Path) -> bool:
        return _key(path) in self.files

    def truncate_file(self, file: Path) -> None:
        if _key(file) not in self.files:
            raise FileNotFoundError(file)
        self.files[_key(file)] = bytearray()

    def file_size(self, file: Path) -> int:
        data = self.files.get(_key(file))
        if data is None:
            raise FileNotFoundError(file)
        return len(data)

    def write_data(self, file: Path, data: bytes, offset: int | None) -> None:
        buf = self.files.get(_key(file))
        if buf is None:
            raise FileNotFoundError(file)
        start = offset or 0
        grow = max(0, start + len(data) - len(buf))
        if self.capacity is not None and grow and self.used() + grow > self.capacity:
            raise PermissionError(f"{file}: the store is full ({self.capacity} octets)")
        if len(buf) < start:
            buf.extend(bytes(start - len(buf)))
        buf[start:start + len(data)] = data

    def create_file(self, file: Path) -> Fs:
        if _key(file) in self.files:
            return Fs.CREATE_NOT_ALLOWED
        self.files[_key(file)] = bytearray()
        return Fs.CREATE_SUCCESS

    def delete_file(self, file: Path) -> Fs:
        if self.files.pop(_key(file), None) is None:
            return Fs.DELETE_FILE_DOES_NOT_EXIST
        return Fs.DELETE_SUCCESS

    def rename_file(self, old_file: Path, new_file: Path) -> Fs:
        if _key(old_file) not in self.files:
            return Fs.RENAME_OLD_FILE_DOES_NOT_EXIST
        if _key(new_file) in self.files:
            return Fs.RENAME_NEW_FILE_DOES_EXIST
        self.files[_key(new_file)] = self.files.pop(_key(old_file))
        return Fs.RENAME_SUCCESS

    def replace_file(self, replaced_file: Path, source_file: Path) -> Fs:
        if _key(replaced_file) not in self.files:
            return Fs.REPLACE_FILE_NAME_ONE_TO_BE_REPLACED_DOES_NOT_EXIST
        if _key(source_file) not in self.files:
            return Fs.REPLACE_FILE_NAME_TWO_REPLACE_SOURCE_NOT_EXIST
        self.files[_key(replaced_file)] = self.files.pop(_key(source_file))
        return Fs.REPLACE_SUCCESS

    def create_directory(self, dir_name: Path) -> Fs:
        return Fs.CREATE_DIR_SUCCESS

    def remove_directory(self, dir_name: Path, recursive: bool = False) -> Fs:
        prefix = _key(dir_name).rstrip("/") + "/"
        names = [n for n in self.files if n.startswith(prefix)]
        if names and not recursive:
            return Fs.REMOVE_DIR_NOT_ALLOWED
        for n in names:
            del self.files[n]
        return Fs.REMOVE_DIR_SUCCESS

    def list_directory(self, dir_name: Path, file_name: Path, recursive: bool = False) -> Fs:
        prefix = _key(dir_name).rstrip("/") + "/"
        listing = "\n".join(n for n in sorted(self.files) if n.startswith(prefix))
        self.files[_key(file_name)] = bytearray(listing.encode())
        return Fs.SUCCESS

    def calculate_checksum(self, checksum_type: ChecksumType, file_path: Path,
                           size_to_verify: int, segment_len: int = 4096) -> bytes:
        data = self.files.get(_key(file_path))
        if data is None:
            raise FileNotFoundError(file_path)
        return file_checksum(checksum_type, bytes(data[:size_to_verify]))
