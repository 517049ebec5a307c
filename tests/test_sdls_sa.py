"""SA state machine (355.1-B-1 §3.3), key procedures, Extended Procedure PDUs as commands."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.codecs.crc import compute_fecf
from linkstack.errors import ConfigError, DecodeError, LinkstackError
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.sdls import (
    SA_TRANSITIONS,
    FrameAccepted,
    Gvcid,
    Key,
    KeyRing,
    KeyState,
    RejectReason,
    SaDatabase,
    SaProcedure,
    SaState,
    SaStateError,
    SdlsEngine,
    SdlsRejected,
    SecurityAssociation,
)
from linkstack.sdls.pdu import (
    DeleteSa,
    ExpireSa,
    KeyActivation,
    KeyDeactivation,
    Pdu,
    ReadArsn,
    ReadArsnReply,
    RekeySa,
    SaStatusReply,
    SaStatusRequest,
    ServiceGroup,
    SetArsn,
    SetArsnWindow,
    StartSa,
    StopSa,
    decode_procedure,
)

KEY = bytes(range(32))


def _sa(spi: int, state: SaState, key_id: int | None = 1, vcids: set[int] | None = None,
        **kw: object) -> SecurityAssociation:
    params: dict[str, object] = {"arsn_length": 2, **kw}
    return SecurityAssociation(spi=spi, frame="tc", scid=3, vcids=vcids or {0},
                               service="authenticated_encryption", algorithm="aes-gcm",
                               key_id=key_id, state=state, **params)  # type: ignore[arg-type]


def _db(*sas: SecurityAssociation) -> SaDatabase:
    keys = KeyRing([Key(1, KEY), Key(2, KEY[::-1]), Key(3, bytes(32), KeyState.PRE_ACTIVE),
                    Key(4, bytes(16))])
    return SaDatabase(keys, sas)


def _in_state(state: SaState, spi: int = 6) -> SaDatabase:
    return _db(_sa(spi, state, key_id=None if state is SaState.UNKEYED else 1))


# --------------------------------------------------------------------------------------
# legal and illegal transitions, exhaustively
# --------------------------------------------------------------------------------------

PROCEDURES = {
    SaProcedure.REKEY: lambda db: db.rekey(6, 2),
    SaProcedure.START: lambda db: db.start(6),
    SaProcedure.STOP: lambda db: db.stop(6),
    SaProcedure.EXPIRE: lambda db: db.expire(6),
    SaProcedure.DELETE: lambda db: db.delete(6),
    SaProcedure.SET_ARSN: lambda db: db.set_arsn(6, 10),
    SaProcedure.SET_ARSN_WINDOW: lambda db: db.set_arsn_window(6, 9),
    SaProcedure.READ_ARSN: lambda db: db.read_arsn(6),
}


@pytest.mark.parametrize(("procedure", "state"),
                         list(itertools.product(PROCEDURES, [SaState.UNKEYED, SaState.KEYED,
                                                            SaState.OPERATIONAL])))
def test_every_transition(procedure: SaProcedure, state: SaState) -> None:
    db = _in_state(state)
    legal, target = SA_TRANSITIONS[procedure]
    if state in legal:
        PROCEDURES[procedure](db)
        after = db.status(6)
        assert after is (target if target is not None else state)
    else:
        with pytest.raises(SaStateError) as info:
            PROCEDURES[procedure](db)
        assert info.value.spi == 6 and info.value.state == state.name
        assert f"illegal in state {state.name}" in str(info.value)
        assert db.status(6) is state  # nothing changed


def test_transition_table_is_355_1() -> None:
    t = SA_TRANSITIONS
    assert t[SaProcedure.REKEY] == (frozenset({SaState.UNKEYED}), SaState.KEYED)
    assert t[SaProcedure.START] == (frozenset({SaState.KEYED}), SaState.OPERATIONAL)
    assert t[SaProcedure.STOP] == (frozenset({SaState.OPERATIONAL}), SaState.KEYED)
    assert t[SaProcedure.EXPIRE] == (frozenset({SaState.KEYED}), SaState.UNKEYED)
    assert t[SaProcedure.DELETE] == (frozenset({SaState.UNKEYED}), SaState.NONE)


def test_full_life_cycle() -> None:
    db = _db(_sa(6, SaState.UNKEYED, key_id=None))
    db.rekey(6, 2, sequence=0x0100)
    assert (db[6].key_id, db[6].arsn, db.status(6)) == (2, 0x0100, SaState.KEYED)
    db.start(6, [Gvcid(0, 3, 4), Gvcid(0, 3, 5)])
    assert db[6].vcids == {4, 5} and db.status(6) is SaState.OPERATIONAL
    db.set_arsn(6, 7)
    assert db.read_arsn(6) == 7
    db.stop(6)
    db.expire(6)
    assert db[6].key_id is None and db.status(6) is SaState.UNKEYED
    db.delete(6)
    assert 6 not in db and db.status(6) is SaState.NONE
    with pytest.raises(SaStateError, match="no SA 6"):
        db.rekey(6, 2)


def test_start_checks() -> None:
    db = _db(_sa(5, SaState.OPERATIONAL, vcids={0}), _sa(6, SaState.KEYED, vcids={0, 1}))
    with pytest.raises(SaStateError, match="SA 5 is already operational on VC 0"):
        db.start(6)
    with pytest.raises(SaStateError, match="not a TC channel of spacecraft 3"):
        db.start(6, [Gvcid(1, 3, 1)])  # TFVN 1 = AOS
    with pytest.raises(SaStateError, match="spacecraft 3"):
        db.start(6, [Gvcid(0, 4, 1)])
    db.start(6, [Gvcid(0, 3, 1)])
    assert db.operational_sa(db[6].frame, 3, 1) is db[6]
    db.keys.get(1).state = KeyState.DEACTIVATED  # type: ignore[union-attr]
    db.stop(6)
    with pytest.raises(SaStateError, match="not ACTIVE"):
        db.start(6)


def test_rekey_checks() -> None:
    db = _db(_sa(6, SaState.UNKEYED, key_id=None))
    with pytest.raises(SaStateError, match="no key 99"):
        db.rekey(6, 99)
    with pytest.raises(SaStateError, match="PRE_ACTIVE, not ACTIVE"):
        db.rekey(6, 3)
    with pytest.raises(SaStateError, match="does not fit"):
        db.rekey(6, 2, sequence=1 << 16)
    db.activate_key(3)
    db.rekey(6, 3)
    assert db.status(6) is SaState.KEYED


def test_set_arsn_never_moves_a_gcm_iv_counter_back() -> None:
    db = _db(_sa(6, SaState.KEYED, arsn_length=0, iv=1000))
    assert db[6].sequence_field == "iv"
    db.set_arsn(6, 2000)
    assert db.read_arsn(6) == 2000
    with pytest.raises(SaStateError, match="IV reuse"):
        db.set_arsn(6, 5)
    with pytest.raises(SaStateError, match="does not fit"):
        db.set_arsn(6, 1 << 96)


def test_set_arsn_window_is_validated() -> None:
    db = _db(_sa(6, SaState.KEYED))
    with pytest.raises(SaStateError, match="at least 1"):
        db.set_arsn_window(6, 0)
    assert db[6].arsn_window == 5


def test_key_procedures() -> None:
    db = _db(_sa(6, SaState.OPERATIONAL, key_id=1))
    with pytest.raises(SaStateError, match="only a PRE_ACTIVE key can be activated"):
        db.activate_key(1)
    db.activate_key(3)
    assert db.keys.get(3).state is KeyState.ACTIVE  # type: ignore[union-attr]
    with pytest.raises(SaStateError, match="in use by operational SA 6"):
        db.deactivate_key(1)
    db.deactivate_key(2)
    with pytest.raises(SaStateError, match="only an ACTIVE key can be deactivated"):
        db.deactivate_key(2)
    with pytest.raises(SaStateError, match="no key 77"):
        db.activate_key(77)
    with pytest.raises(ConfigError, match="takes 128 or 256 bits"):
        SaDatabase(KeyRing([Key(4, bytes(20))]),
                   [SecurityAssociation(spi=9, frame="tc", scid=3, vcids={0},
                                        service="authentication", algorithm="aes-cmac",
                                        key_id=4, iv_length=0)])


def test_two_operational_sas_on_one_channel_are_refused() -> None:
    with pytest.raises(ConfigError, match="both operational"):
        _db(_sa(5, SaState.OPERATIONAL), _sa(6, SaState.OPERATIONAL))


# --------------------------------------------------------------------------------------
# PDUs
# --------------------------------------------------------------------------------------

ALL_PDUS = [
    StartSa(6, (Gvcid(0, 3, 1, 0),)), StopSa(6), ExpireSa(6), DeleteSa(6),
    RekeySa(6, 2, b"\x00\x10"), RekeySa(6, 2), SetArsn(6, b"\x01\x02"), SetArsnWindow(6, 300),
    ReadArsn(6), ReadArsnReply(6, b"\x00\x07"), SaStatusRequest(6),
    SaStatusReply(6, SaState.KEYED), KeyActivation((1, 2)), KeyDeactivation((3,)),
]


@pytest.mark.parametrize("proc", ALL_PDUS, ids=lambda p: type(p).__name__)
def test_pdu_round_trip(proc: object) -> None:
    raw = proc.encode()  # type: ignore[attr-defined]
    assert decode_procedure(raw) == proc
    pdu, used = Pdu.decode(raw + b"\xee\xee")
    assert used == len(raw) and 8 * len(pdu.value) == int.from_bytes(raw[1:3], "big")


@given(st.binary(max_size=40))
def test_pdu_decoder_only_raises_decode_errors(blob: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_procedure(blob)


def test_unsupported_pdus() -> None:
    with pytest.raises(DecodeError, match="user-defined"):
        decode_procedure(Pdu(0, 1, b"", user_flag=True).encode())
    with pytest.raises(DecodeError, match="not supported"):
        decode_procedure(Pdu(ServiceGroup.KEY_MANAGEMENT, 0b0001, b"\x00" * 4).encode())  # OTAR
    with pytest.raises(DecodeError, match="whole number of octets"):
        decode_procedure(bytes.fromhex("1b000700"))
    with pytest.raises(DecodeError, match="takes 2"):
        decode_procedure(bytes.fromhex("1e0030" "0006938f21c4"))  # CryptoLib SA_STOP_6 frame


def test_execute_replies_and_refusals() -> None:
    db = _db(_sa(6, SaState.KEYED, arsn=0x1234), _sa(1, SaState.OPERATIONAL, vcids={9}))
    assert db.execute(ReadArsn(6).encode()) == ReadArsnReply(6, b"\x12\x34").encode()
    assert db.execute(SaStatusRequest(6).encode()) == SaStatusReply(6, SaState.KEYED).encode()
    assert db.execute(SaStatusRequest(77).encode()) == SaStatusReply(77, SaState.NONE).encode()
    with pytest.raises(SaStateError, match="cannot manage itself"):
        db.execute(StopSa(1).encode(), via_spi=1)
    with pytest.raises(DecodeError, match="not a command"):
        db.execute(SaStatusReply(6, SaState.KEYED).encode())
    with pytest.raises(SaStateError, match="illegal in state KEYED"):
        db.execute(StopSa(6).encode(), via_spi=1)
    assert db.execute(StartSa(6).encode(), via_spi=1) is None
    assert db.status(6) is SaState.OPERATIONAL
    assert db.execute(SetArsn(6, b"\x00\x09").encode(), via_spi=1) is None
    assert db.read_arsn(6) == 9
    db.execute(SetArsnWindow(6, 12).encode(), via_spi=1)
    assert db[6].arsn_window == 12
    db.execute(KeyActivation((3,)).encode(), via_spi=1)
    db.execute(KeyDeactivation((2,)).encode(), via_spi=1)
    assert [db.keys.get(k).state for k in (2, 3)] == [  # type: ignore[union-attr]
        KeyState.DEACTIVATED, KeyState.ACTIVE]
    db.execute(StopSa(6).encode(), via_spi=1)
    db.execute(ExpireSa(6).encode(), via_spi=1)
    db.execute(RekeySa(6, 3, b"\x00\x05").encode(), via_spi=1)
    assert (db.status(6), db[6].key_id, db.read_arsn(6)) == (SaState.KEYED, 3, 5)
    db.expire(6)
    db.execute(DeleteSa(6).encode(), via_spi=1)
    assert 6 not in db


def test_sa_management_as_authenticated_ground_commands() -> None:
    """Ground secures a TC carrying Start SA 6 with SA 1; onboard executes it only if the
    frame authenticates, through SA 1, and refuses a tampered copy."""
    channel = TcChannelConfig(segmented_vcids=frozenset({0}))

    def end() -> SaDatabase:
        return _db(_sa(1, SaState.OPERATIONAL, vcids={0}), _sa(6, SaState.KEYED, vcids={1}))

    ground = SdlsEngine(end(), channel)
    onboard = SdlsEngine(end(), channel)
    command = TcFrame(3, 0, 0, StartSa(6, (Gvcid(0, 3, 1),)).encode(), map_id=0).encode(
        ground.clear_channel(1))
    secured = ground.apply(command)
    tampered = bytearray(secured)
    tampered[-10] ^= 0x01
    tampered[-2:] = compute_fecf(bytes(tampered[:-2]))

    def deliver(frame: bytes) -> bytes | None:
        result = onboard.process(frame)
        if isinstance(result, SdlsRejected):
            return None
        assert isinstance(result, FrameAccepted)
        tc = TcFrame.decode(result.frame, onboard.clear_channel(result.spi))
        return onboard.sadb.execute(tc.data_field, via_spi=result.spi)

    assert deliver(bytes(tampered)) is None
    assert onboard.counters.rejected[RejectReason.BAD_MAC] == 1
    assert onboard.sadb.status(6) is SaState.KEYED
    deliver(secured)
    assert onboard.sadb.status(6) is SaState.OPERATIONAL
    assert onboard.sadb[6].vcids == {1}
    assert deliver(secured) is None  # replayed command: refused before execution
    assert onboard.counters.rejected[RejectReason.REPLAY] == 1


def test_errors_are_linkstack_errors() -> None:
    assert issubclass(SaStateError, LinkstackError)
