"""SA and key files, key file permissions, key redaction, counters that survive restarts."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from linkstack.errors import ConfigError
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.sdls import (
    CipherSuite,
    FileCounterStore,
    FrameAccepted,
    KeyFileError,
    KeyState,
    MemoryCounterStore,
    RejectReason,
    SaState,
    SdlsEngine,
    SdlsRejected,
    load_key_file,
    load_sa_file,
)

KEY_HEX = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"
CMAC_KEY_HEX = "2b7e151628aed2a6abf7158809cf4f3c"

SA_TOML = """
key_file = "keys.toml"

[[sa]]
spi = 9
frame = "tc"
scid = 3
vcids = [0, 1]
service = "authenticated_encryption"
algorithm = "aes-gcm"
key_id = 136
state = "operational"
iv_length = 12
arsn_length = 2
arsn_window = 5
mac_length = 16
auth_mask = "ffffffff00"
iv = "b6ac8e4963f49207ffd6374b"
arsn = "0123"

[[sa]]
spi = 10
frame = "tm"
scid = 44
vcids = [0]
service = "authentication"
algorithm = "aes-cmac"
key_id = 7
iv_length = 0
arsn_length = 4
arsn_transmitted_length = 2
auth_mask_fill = "00"

[[sa]]
spi = 11
frame = "uslp"
scid = 3
vcids = [2]
service = "authentication"
algorithm = "hmac-sha256"
"""

KEYS_TOML = f"""
[[key]]
id = 136
value = "{KEY_HEX}"

[[key]]
id = 7
value = "{CMAC_KEY_HEX}"
state = "pre_active"
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    write(tmp_path / "keys.toml", KEYS_TOML)
    return write(tmp_path / "sa.toml", SA_TOML, 0o644)


def test_load_sa_file(files: Path) -> None:
    db = load_sa_file(files)
    sa9, sa10, sa11 = db[9], db[10], db[11]
    assert (sa9.state, sa9.key_id, sa9.iv, sa9.arsn) == (
        SaState.OPERATIONAL, 136, 0xB6AC8E4963F49207FFD6374B, 0x0123)
    assert sa9.vcids == {0, 1} and sa9.auth_mask == bytes.fromhex("ffffffff00")
    assert sa9.overhead == 2 + 12 + 2 + 16
    assert (sa10.state, sa10.arsn_tx, sa10.auth_mask_fill) == (SaState.KEYED, 2, 0)
    assert (sa11.state, sa11.key_id) == (SaState.UNKEYED, None)
    assert db.keys.get(7).state is KeyState.PRE_ACTIVE  # type: ignore[union-attr]
    assert len(db.keys) == 2


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_key_file_must_be_private(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "keys.toml", KEYS_TOML, mode)
    with pytest.raises(KeyFileError) as info:
        load_key_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ") and "group or others" in message
    assert f"{mode:04o}" in message and "chmod 600" in message
    assert KEY_HEX not in message


def test_sa_file_refuses_a_readable_key_file(tmp_path: Path) -> None:
    write(tmp_path / "keys.toml", KEYS_TOML, 0o640)
    sa = write(tmp_path / "sa.toml", SA_TOML)
    with pytest.raises(KeyFileError, match=r"keys\.toml: key file is readable"):
        load_sa_file(sa)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"nope\.toml: cannot open key file"):
        load_key_file(tmp_path / "nope.toml")


@pytest.mark.parametrize(("text", "key"), [
    (SA_TOML.replace("mac_length = 16", "mac_length = 16\ncolour = 'red'"), "sa[0].colour"),
    ("extra = 1\n" + SA_TOML, "extra"),
    (SA_TOML.replace('frame = "tm"', 'frame = "tx"'), "sa[1].frame"),
    (SA_TOML.replace('service = "authentication"\nalgorithm = "aes-cmac"',
                     'service = "authentication"\nalgorithm = "des"'), "sa[1].algorithm"),
    (SA_TOML.replace("arsn_window = 5", "arsn_window = 0"), "sa[0].arsn_window"),
    (SA_TOML.replace("mac_length = 16", "mac_length = 17"), "sa[0].mac_length"),
    (SA_TOML.replace('arsn = "0123"', 'arsn = "01zz"'), "sa[0].arsn"),
    (SA_TOML.replace("scid = 44", "scid = 4444"), "sa[1].scid"),
    (SA_TOML.replace("key_id = 7", "key_id = 8"), "sa[1].key_id"),
    (SA_TOML.replace("spi = 10", "spi = 9"), "sa[1].spi"),
    (SA_TOML.replace("spi = 11\n", ""), "sa[2].spi"),
    (SA_TOML.replace('state = "operational"', 'state = "expired"'), "sa[0].state"),
])
def test_sa_file_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    write(tmp_path / "keys.toml", KEYS_TOML)
    with pytest.raises(ConfigError) as info:
        load_sa_file(write(tmp_path / "sa.toml", text))
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


@pytest.mark.parametrize(("text", "key"), [
    (KEYS_TOML.replace('state = "pre_active"', 'state = "pre_active"\nlabel = "x"'),
     "key[1].label"),
    (KEYS_TOML + "\n[other]\n", "other"),
    (KEYS_TOML.replace('state = "pre_active"', 'state = "lost"'), "key[1].state"),
    (KEYS_TOML.replace(f'"{CMAC_KEY_HEX}"', f'"{CMAC_KEY_HEX}zz"'), "key[1].value"),
    (KEYS_TOML.replace("id = 7", "id = 136"), "key[1].id"),
    (KEYS_TOML.replace("id = 7", "id = 70000"), "key[1].id"),
])
def test_key_file_errors_name_the_key_and_hide_the_value(tmp_path: Path, text: str,
                                                         key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_key_file(write(tmp_path / "keys.toml", text))
    assert info.value.key == key
    assert CMAC_KEY_HEX not in str(info.value) and KEY_HEX not in str(info.value)


# --------------------------------------------------------------------------------------
# keys never appear in repr / str / logs / errors
# --------------------------------------------------------------------------------------

def _secrets() -> list[str]:
    out = []
    for text in (KEY_HEX, CMAC_KEY_HEX):
        raw = bytes.fromhex(text)
        out += [text, text.upper(), repr(raw), str(list(raw))[1:-1], raw.hex(" ")]
    return out


def test_keys_never_printed(files: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db = load_sa_file(files)
    channel = TcChannelConfig(segmented_vcids=frozenset({0}))
    tx = SdlsEngine(db, channel)
    frame = tx.apply(TcFrame(3, 0, 0, b"hello", map_id=1).encode(tx.clear_channel(9)))
    rx = SdlsEngine(load_sa_file(files), channel)
    assert isinstance(rx.process(frame), FrameAccepted)
    assert isinstance(rx.process(frame), SdlsRejected)  # replay, logged
    bad = bytearray(frame)
    bad[20] ^= 1
    rx.process(bytes(bad))
    key = db.keys.get(136)
    suite = CipherSuite(db[9].algorithm, key.secret(), 16)  # type: ignore[union-attr]
    texts = [repr(key), str(key), repr(db.keys), str(db.keys), repr(db), str(db), repr(db[9]),
             str(db[9]), repr(tx), repr(rx), repr(suite), str(suite), repr(rx.counters),
             caplog.text]
    texts += [str(r.msg) % r.args if r.args else str(r.msg) for r in caplog.records]
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(key)
    for text in texts:
        for secret in _secrets():
            assert secret not in text, (secret, text)
    assert "redacted" in repr(key) and "256-bit" in repr(key)
    assert any("replay" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------
# counters survive restarts without reuse
# --------------------------------------------------------------------------------------

def _sender(files: Path, state: Path, block: int) -> SdlsEngine:
    db = load_sa_file(files, counters=FileCounterStore(state, block=block))
    return SdlsEngine(db, TcChannelConfig(segmented_vcids=frozenset({0})))


def _ivs_of(frames: list[bytes]) -> list[tuple[int, int]]:
    # TC header 5 + segment header 1 + SPI 2, then IV 12 and ARSN 2
    return [(int.from_bytes(f[8:20], "big"), int.from_bytes(f[20:22], "big")) for f in frames]


@pytest.mark.parametrize("block", [1, 4, 256])
def test_iv_counter_survives_restart(files: Path, tmp_path: Path, block: int) -> None:
    state = tmp_path / "counters.json"
    base = 0xB6AC8E4963F49207FFD6374B
    tx = _sender(files, state, block)
    clear = TcFrame(3, 0, 0, b"cmd", map_id=1).encode(tx.clear_channel(9))
    before = [tx.apply(clear) for _ in range(3)]
    assert _ivs_of(before) == [(base + i, 0x0123 + i) for i in (1, 2, 3)]
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "counters.json.tmp").exists()
    # "restart": a new SA database and engine on the same files
    tx2 = _sender(files, state, block)
    after = [tx2.apply(clear) for _ in range(2)]
    used_before = {iv for iv, _ in _ivs_of(before)}
    ivs_after = [iv for iv, _ in _ivs_of(after)]
    assert not used_before & set(ivs_after)
    assert ivs_after[0] == base + max(3, block) + 1  # resumes after the reservation
    arsns = [a for _, a in _ivs_of(before + after)]
    assert arsns == sorted(set(arsns))  # strictly increasing across the restart
    # the receiver accepts the post-restart frames when the gap is within its window
    rx = SdlsEngine(load_sa_file(files), TcChannelConfig(segmented_vcids=frozenset({0})))
    for f in before:
        assert isinstance(rx.process(f), FrameAccepted)
    result = rx.process(after[0])
    if block <= 4:
        assert isinstance(result, FrameAccepted)
    else:  # 253 values skipped: outside a window of 5 (the operator resets with Set ARSN)
        assert isinstance(result, SdlsRejected) and result.reason is RejectReason.REPLAY


def test_reservation_writes_once_per_block(files: Path, tmp_path: Path) -> None:
    state = tmp_path / "c.json"
    tx = _sender(files, state, 4)
    clear = TcFrame(3, 0, 0, b"x", map_id=1).encode(tx.clear_channel(9))
    for _ in range(10):
        tx.apply(clear)
    store = tx.sadb.counters
    assert isinstance(store, FileCounterStore) and store.writes == 3
    doc = json.loads(state.read_text())
    assert doc["reserved"]["9"]["iv"] == 0xB6AC8E4963F49207FFD6374B + 12


def test_reservation_happens_before_use(files: Path) -> None:
    class Full(MemoryCounterStore):
        def reserve(self, spi: int, iv: int, arsn: int) -> None:
            raise OSError(28, "No space left on device")

    db = load_sa_file(files, counters=Full())
    tx = SdlsEngine(db, TcChannelConfig(segmented_vcids=frozenset({0})))
    clear = TcFrame(3, 0, 0, b"x", map_id=1).encode(tx.clear_channel(9))
    with pytest.raises(OSError):
        tx.apply(clear)
    assert db[9].iv == 0xB6AC8E4963F49207FFD6374B and tx.counters.applied == 0


def test_corrupt_counter_file_refuses_to_start(tmp_path: Path) -> None:
    state = tmp_path / "c.json"
    state.write_text("{not json")
    with pytest.raises(ConfigError, match="corrupt; refusing to start"):
        FileCounterStore(state)


def test_rekey_and_set_arsn_update_the_reservation(files: Path, tmp_path: Path) -> None:
    state = tmp_path / "c.json"
    tx = _sender(files, state, 8)
    db = tx.sadb
    db.stop(9)
    db.set_arsn(9, 0x0010)  # ARSN may go down; the IV reservation may not
    store = db.counters
    assert store is not None and store.reserved(9) == (0xB6AC8E4963F49207FFD6374B, 0x0010)
    db.expire(9)
    db.rekey(9, 136, sequence=0x0200)
    assert store.reserved(9) == (0, 0x0200)  # a new key: IVs start afresh
