"""SDLS byte-exact vectors: NASA CryptoLib unit-test frames, NIST/RFC algorithm vectors,
Extended Procedures PDUs.

CryptoLib (github.com/nasa/CryptoLib, test/unit/*.c) is the reference implementation the
vectors come from; each block names the file and the UTEST. Where CryptoLib's SA uses its
default all-zero authentication bit mask the MAC only covers zero octets, so those vectors
pin the header, IV/ARSN and window behaviour (and the MAC algorithm on a zero input);
the TM vectors with an all-ones mask pin the MAC over real frame octets.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.codecs.crc import compute_fecf, crc16_ccitt
from linkstack.frames.aos import AosChannelConfig
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.frames.tm import TmChannelConfig
from linkstack.sdls import (
    SECURITY_HEADER,
    Algorithm,
    CipherSuite,
    FrameAccepted,
    Key,
    KeyRing,
    RejectReason,
    SaDatabase,
    SaState,
    SdlsEngine,
    SdlsRejected,
    SecurityAssociation,
    SecurityHeader,
    ServiceType,
)
from linkstack.sdls.pdu import (
    KeyActivation,
    KeyDeactivation,
    ReadArsn,
    SaStatusRequest,
    SetArsnWindow,
    StartSa,
    decode_procedure,
)
from linkstack.sdls.sa import Gvcid
from linkstack.sdls.services import aes_cmac, hmac_sha256


def _db(key_id: int, key: bytes, **sa: object) -> SaDatabase:
    return SaDatabase(KeyRing([Key(key_id, key)]),
                      [SecurityAssociation(key_id=key_id, state=SaState.OPERATIONAL, **sa)])


def _accepted(result: object) -> FrameAccepted:
    assert isinstance(result, FrameAccepted), result
    return result


def _rejected(result: object, reason: RejectReason) -> None:
    assert isinstance(result, SdlsRejected), result
    assert result.reason is reason, result


# --------------------------------------------------------------------------------------
# CryptoLib test/unit/ut_tc_process.c — the NIST key and IV those tests use (key 136 is
# overwritten with it; "The last valid IV that was seen by the SA" = ...374B).
# --------------------------------------------------------------------------------------

NIST_KEY = bytes.fromhex("ef9f9284cf599eac3b119905a7d18851e7e374cf63aea04358586b0f757670f8")
NIST_IV = int("b6ac8e4963f49207ffd6374b", 16)
NIST_PT = bytes.fromhex("722ee47da4b77424733546c2d400c4e5")
"""The plaintext whose AES-256-GCM ciphertext under NIST_KEY and IV ...374C is 1224DFEF...:
decrypting CryptoLib's accepted frame gives it back (AES-CTR from IV || 00000002)."""

# TC_UT_Managed_Parameters = {0, 0x0003, vcid 0/1, TC_HAS_FECF, TC_HAS_SEGMENT_HDRS, 1024}
TC_FECF_SEG = TcChannelConfig(has_fecf=True, segmented_vcids=frozenset({0, 1}))
TC_NOFECF_SEG = TcChannelConfig(has_fecf=False, segmented_vcids=frozenset({0, 1}))

# UTEST(TC_PROCESS, EXERCISE_IV): SA 9, est=1 ast=0 (encryption only), AES-256-GCM, 12-octet
# IV all transmitted, ARSN window 5, no MAC. (The test also sets shplf_len = 1, but its
# 38-octet frames hold exactly header + segment header + SPI + IV + 16 octets + FECF: the
# 16 octets are the NIST ciphertext, so they are modelled without a Pad Length field.)
EXERCISE_IV_REPLAY = bytes.fromhex(
    "2003002500FF0009B6AC8E4963F49207FFD6374B1224DFEFB72A20D49E09256908874979DFC1")
EXERCISE_IV_OUTSIDE = bytes.fromhex(
    "2003002500FF0009B6AC8E4963F49207FFD6375C1224DFEFB72A20D49E09256908874979B36E")
EXERCISE_IV_GOOD = bytes.fromhex(
    "2003002500FF0009B6AC8E4963F49207FFD6374C1224DFEFB72A20D49E09256908874979AD6F")
EXERCISE_IV_GAP = bytes.fromhex(
    "2003002500FF0009B6AC8E4963F49207FFD6374F1224DFEFB72A20D49E092569088749799C49")


def _exercise_iv_db() -> SaDatabase:
    return _db(136, NIST_KEY, spi=9, frame="tc", scid=3, vcids={0, 1}, service="encryption",
               algorithm="aes-gcm", iv_length=12, arsn_window=5, mac_length=0, iv=NIST_IV)


def test_cryptolib_exercise_iv_process() -> None:
    rx = SdlsEngine(_exercise_iv_db(), TC_FECF_SEG)
    _rejected(rx.process(EXERCISE_IV_REPLAY), RejectReason.REPLAY)  # IV = last accepted
    _rejected(rx.process(EXERCISE_IV_OUTSIDE), RejectReason.REPLAY)  # IV = last + 0x11
    ok = _accepted(rx.process(EXERCISE_IV_GOOD))  # IV = last + 1
    assert ok.iv == NIST_IV + 1
    assert ok.frame == TcFrame(3, 0, 0, NIST_PT, bypass_flag=True, map_id=63).encode(
        rx.clear_channel(9))
    gap = _accepted(rx.process(EXERCISE_IV_GAP))  # IV = last + 3, inside the window
    # "Validate that the SA IV is updated to the most recently received IV"
    assert rx.sadb[9].iv.to_bytes(12, "big") == EXERCISE_IV_GAP[8:20]
    assert gap.iv == NIST_IV + 4
    assert rx.counters.rejected[RejectReason.REPLAY] == 2 and rx.counters.accepted == 2


def test_cryptolib_exercise_iv_apply_is_bit_exact() -> None:
    """pyca reproduces the accepted CryptoLib frame from the NIST plaintext."""
    tx = SdlsEngine(_exercise_iv_db(), TC_FECF_SEG)
    clear = TcFrame(3, 0, 0, NIST_PT, bypass_flag=True, map_id=63).encode(tx.clear_channel(9))
    assert tx.apply(clear) == EXERCISE_IV_GOOD
    assert tx.sadb[9].iv == NIST_IV + 1


# UTEST(TC_PROCESS, EXERCISE_ARSN): SA 9, est=0 ast=1, CMAC-AES256, no IV, 2-octet ARSN all
# transmitted, window 5, 16-octet MAC, abm zero (the SA's default mask): the MAC is
# AES-CMAC over 26 zero octets, the same fd56ca1f... in all four frames.
EXERCISE_ARSN_REPLAY = bytes.fromhex("2003002B00FF000901231224DFEFB72A20D49E09256908874979"
                                     "fd56ca1ffc2697a700dbe6292c10e9ef1B49")
EXERCISE_ARSN_OUTSIDE = bytes.fromhex("2003002B00FF000904441224DFEFB72A20D49E09256908874979"
                                      "fd56ca1ffc2697a700dbe6292c10e9ef9C5C")
EXERCISE_ARSN_GOOD = bytes.fromhex("2003002B00FF000901241224DFEFB72A20D49E09256908874979"
                                   "fd56ca1ffc2697a700dbe6292c10e9ef8A3E")
EXERCISE_ARSN_GAP = bytes.fromhex("2003002B00FF000901291224DFEFB72A20D49E09256908874979"
                                  "fd56ca1ffc2697a700dbe6292c10e9ef3EB4")
CIPHERTEXT = bytes.fromhex("1224DFEFB72A20D49E09256908874979")


def _exercise_arsn_db() -> SaDatabase:
    return _db(136, NIST_KEY, spi=9, frame="tc", scid=3, vcids={0, 1},
               service="authentication", algorithm="aes-cmac", iv_length=0, arsn_length=2,
               arsn_window=5, mac_length=16, auth_mask_fill=0x00, arsn=0x0123)


def test_cryptolib_exercise_arsn_process() -> None:
    rx = SdlsEngine(_exercise_arsn_db(), TC_FECF_SEG)
    _rejected(rx.process(EXERCISE_ARSN_REPLAY), RejectReason.REPLAY)
    _rejected(rx.process(EXERCISE_ARSN_OUTSIDE), RejectReason.REPLAY)
    assert _accepted(rx.process(EXERCISE_ARSN_GOOD)).arsn == 0x0124
    # 0x0129 = 0x0124 + 5: the last value the positive window admits
    assert _accepted(rx.process(EXERCISE_ARSN_GAP)).arsn == 0x0129
    assert rx.sadb[9].arsn == 0x0129


def test_cryptolib_exercise_arsn_apply_is_bit_exact() -> None:
    assert aes_cmac(NIST_KEY, bytes(26)) == bytes.fromhex("fd56ca1ffc2697a700dbe6292c10e9ef")
    tx = SdlsEngine(_exercise_arsn_db(), TC_FECF_SEG)
    clear = TcFrame(3, 0, 0, CIPHERTEXT, bypass_flag=True, map_id=63).encode(
        tx.clear_channel(9))
    assert tx.apply(clear) == EXERCISE_ARSN_GOOD


# UTEST(TC_PROCESS, GCM_IV_AND_ARSN): SA 9, authenticated encryption AES-256-GCM, 12-octet
# IV, 2-octet ARSN, window 5, 16-octet MAC, abm_len 1024 of zeros, TC_NO_FECF.
GCM_IV_AND_ARSN = {
    "bad_iv_bad_arsn": "2003003500FF0009B6AC8E4963F49207FFD6374C01231224DFEFB72A20D49E092569088749"
                       "7951E393DBFEB6FBBC2FF8486D8050B099",
    "bad_iv_good_arsn": "2003003500FF0009B6AC8E4963F49207FFD6374B01241224DFEFB72A20D49E0925690887"
                        "4979ED73F3B3363E24D6A3400BAFA8AE3F86",
    "good_iv_high_arsn": "2003003500FF0009B6AC8E4963F49207FFD6374BFFFE1224DFEFB72A20D49E092569088"
                         "74979ED73F3B3363E24D6A3400BAFA8AE3F86",
    "outside_window": "2003003500FF0009B6AC8E4963F49207FFD6375C1224DFEFB72A20D49E09256908874979B36E"
                      "00000000000000000000000000000000",
    "good_iv_good_arsn": "2003003500FF0009B6AC8E4963F49207FFD6374C01241224DFEFB72A20D49E092569088"
                         "7497951E393DBFEB6FBBC2FF8486D8050B099",
    "good_iv_gap_good_arsn_gap": "2003003500FF0009B6AC8E4963F49207FFD6375101291224DFEFB72A20D49E09"
                                 "256908874979E825D7A95C2A3106D97FA136847968EA",
}


def _gcm_iv_arsn_db() -> SaDatabase:
    return _db(136, NIST_KEY, spi=9, frame="tc", scid=3, vcids={0, 1, 2, 3},
               service="authenticated_encryption", algorithm="aes-gcm", iv_length=12,
               arsn_length=2, arsn_window=5, mac_length=16, auth_mask=bytes(1024),
               iv=NIST_IV, arsn=0x0123)


def test_cryptolib_gcm_iv_and_arsn_process() -> None:
    rx = SdlsEngine(_gcm_iv_arsn_db(), TC_NOFECF_SEG)
    sa = rx.sadb[9]
    f = {k: bytes.fromhex(v) for k, v in GCM_IV_AND_ARSN.items()}
    _rejected(rx.process(f["bad_iv_bad_arsn"]), RejectReason.REPLAY)  # ARSN replayed
    assert (sa.iv, sa.arsn) == (NIST_IV, 0x0123)  # "Verify IV did not increment"
    _rejected(rx.process(f["bad_iv_good_arsn"]), RejectReason.REPLAY)  # IV replayed
    assert (sa.iv, sa.arsn) == (NIST_IV, 0x0123)  # "Verify ARSN did not increment"
    _rejected(rx.process(f["good_iv_high_arsn"]), RejectReason.REPLAY)
    # CryptoLib never processes this one (tag of zeros): linkstack checks the MAC first
    _rejected(rx.process(f["outside_window"]), RejectReason.BAD_MAC)
    ok = _accepted(rx.process(f["good_iv_good_arsn"]))
    assert ok.iv is not None and (ok.iv & 0xFF, ok.arsn) == (0x4C, 0x0124)
    assert ok.frame == bytes.fromhex("2003001500ff") + NIST_PT
    gap = _accepted(rx.process(f["good_iv_gap_good_arsn_gap"]))  # both at last + 5
    assert (gap.iv, gap.arsn) == (NIST_IV + 6, 0x0129)
    assert sa.iv.to_bytes(12, "big") == f["good_iv_gap_good_arsn_gap"][8:20]


def test_cryptolib_gcm_iv_and_arsn_apply_is_bit_exact() -> None:
    tx = SdlsEngine(_gcm_iv_arsn_db(), TC_NOFECF_SEG)
    clear = TcFrame(3, 0, 0, NIST_PT, bypass_flag=True, map_id=63).encode(tx.clear_channel(9))
    assert tx.apply(clear) == bytes.fromhex(GCM_IV_AND_ARSN["good_iv_good_arsn"])


# --------------------------------------------------------------------------------------
# CryptoLib test/unit/ut_tm_apply.c: TM frames of 1786 octets (SCID 44, VC 0, FECF, no
# OCF), SA 5 authentication only, no IV/ARSN, 16-octet MAC, key 136 (CryptoLib's key ring
# value ff9f...f9). The framed_tm_h input already holds a zero SPI and a zero MAC; its data
# field is "0801...D2AB" "BABB" then "AABB" repeated (same in the four tests).
# --------------------------------------------------------------------------------------

TM_KEY_136 = bytes.fromhex("ff9f9284cf599eac3b119905a7d18851e7e374cf63aea04358586b0f757670f9")
TM_HEADER = bytes.fromhex("02C000001800")
TM_DATA = (bytes.fromhex("08010000000F00112233445566778899AABBCCDDEEFFA107FF000006D2AB" "BABB")
           + bytes.fromhex("AABB") * 864)
TM_CHANNEL = TmChannelConfig(frame_length=1786, has_fecf=True)

TM_VECTORS = {
    # UTEST name: (algorithm, abm filled with, MAC || FECF of the truth_tm_h frame)
    "TM_APPLY_SECURITY, AES_CMAC_256_TEST_1": (
        "aes-cmac", 0xFF, "A8B942B0B98CF1D8FCCEC19DD67E77BE3E44"),
    "TM_APPLY_SECURITY, AES_CMAC_256_TEST_0": (
        "aes-cmac", 0x00, "e34e7c942ddf2738f17f77ec153094452a4a"),
    "TM_APPLY_ENC_VAL, AES_HMAC_SHA_256_TEST_1": (
        "hmac-sha256", 0xFF, "F39404F2A384C6677E405D49782E3537107E"),
    "TM_APPLY_ENC_VAL, AES_HMAC_SHA_256_TEST_0": (
        "hmac-sha256", 0x00, "fd069ae4e9e97eb05bfe2f0a6ec6c56294df"),
}


@pytest.mark.parametrize("utest", sorted(TM_VECTORS))
def test_cryptolib_tm_apply_and_process(utest: str) -> None:
    algorithm, fill, tail = TM_VECTORS[utest]

    def db() -> SaDatabase:
        return _db(136, TM_KEY_136, spi=5, frame="tm", scid=44, vcids={0},
                   service="authentication", algorithm=algorithm, iv_length=0,
                   mac_length=16, auth_mask_fill=fill)

    tx = SdlsEngine(db(), TM_CHANNEL)
    assert tx.clear_channel(5).frame_length == 1786 - 18  # type: ignore[union-attr]
    clear = TM_HEADER + TM_DATA
    clear += compute_fecf(clear)
    truth = TM_HEADER + bytes.fromhex("0005") + TM_DATA + bytes.fromhex(tail)
    assert len(truth) == 1786 and crc16_ccitt(truth) == 0
    assert tx.apply(clear) == truth
    rx = SdlsEngine(db(), TM_CHANNEL)
    assert _accepted(rx.process(truth)).frame == clear


def test_cryptolib_tm_secondary_header_mac() -> None:
    """ut_tm_apply.c UTEST(TM_APPLY_SECURITY, SECONDARY_HDR_PRESENT_MAC): SCID 44 has no
    FECF in Crypto_Init_TM_Unit_Test; the Secondary Header (ID 06 + 6 octets) stays in
    front of the Security Header, SPI 0005 follows it; CMAC-AES256 over every octet before
    the MAC (abm all 0xFF)."""
    header = bytes.fromhex("02C000009800" "06AABBCCDDEEFF")
    data = (bytes.fromhex("08010000000F00112233445566778899AABBCCDDEEFFA107FF000006D2AB" "BABB")
            + (bytes.fromhex("AABB") * 862)[:1723])
    truth = header + bytes.fromhex("0005") + data + bytes.fromhex(
        "1FCD8AA6DA19DA72549079ACD9AA8B97")
    channel = TmChannelConfig(frame_length=1786, has_fecf=False)

    def db() -> SaDatabase:
        return _db(136, TM_KEY_136, spi=5, frame="tm", scid=44, vcids={0},
                   service="authentication", algorithm="aes-cmac", iv_length=0,
                   mac_length=16)

    assert SdlsEngine(db(), channel).apply(header + data) == truth
    assert _accepted(SdlsEngine(db(), channel).process(truth)).frame == header + data


def test_tm_all_ones_mask_macs_match_the_algorithms() -> None:
    """The MACs above are the plain algorithms over every octet before the MAC."""
    body = TM_HEADER + bytes.fromhex("0005") + TM_DATA
    assert aes_cmac(TM_KEY_136, body).hex() == "a8b942b0b98cf1d8fccec19dd67e77be"
    assert hmac_sha256(TM_KEY_136, body)[:16].hex() == "f39404f2a384c6677e405d49782e3537"


# ut_aos_apply.c UTEST(AOS_APPLY, AES_CMAC_256_TEST_BITMASK_1): AOS, SCID 3, VC 0, 1786
# octets, FECF, no FHEC/IZ/OCF; SA 10 (AOS authentication only, abm left all zero, key 10
# never set = 32 zero octets) with CMAC-AES256: SPI 000A after the 6-octet header, MAC =
# CMAC over 1768 zero octets. (SA 10 also has a 2-octet ARSN that is not transmitted and
# not in the MAC; it is left out here.)
AOS_DATA = (bytes.fromhex("112233445566778899AABBCCDDEEFFA107FF000006D2AB" "BABB")
            + (bytes.fromhex("AABB") * 868)[:1735])


def test_cryptolib_aos_cmac_apply_and_process() -> None:
    def db() -> SaDatabase:
        return _db(10, bytes(32), spi=10, frame="aos", scid=3, vcids={0},
                   service="authentication", algorithm="aes-cmac", iv_length=0,
                   mac_length=16, auth_mask_fill=0x00)

    channel = AosChannelConfig(frame_length=1786, has_fecf=True)
    header = bytes.fromhex("40C000000000")
    clear = header + AOS_DATA
    clear += compute_fecf(clear)
    truth = header + bytes.fromhex("000A") + AOS_DATA + bytes.fromhex(
        "0F26598F192575B11A7762D2FB02C9714160")
    assert SdlsEngine(db(), channel).apply(clear) == truth
    assert _accepted(SdlsEngine(db(), channel).process(truth)).frame == clear


# --------------------------------------------------------------------------------------
# Algorithm vectors through the service layer
# --------------------------------------------------------------------------------------

def test_gcm_spec_test_case_16() -> None:
    """McGrew & Viega, "The Galois/Counter Mode of Operation", Test Case 16 (AES-256)."""
    key = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
    iv = bytes.fromhex("cafebabefacedbaddecaf888")
    pt = bytes.fromhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                       "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
    aad = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    ct = bytes.fromhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                       "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662")
    tag = bytes.fromhex("76fc6ece0f4e1768cddf8853bb2d551b")
    suite = CipherSuite(Algorithm.AES_GCM, key, 16)
    assert suite.seal(iv, pt, aad) == (ct, tag)
    assert suite.open(iv, ct, tag, aad) == pt
    assert suite.open(iv, ct, tag[:-1] + bytes([tag[-1] ^ 1]), aad) is None
    short = CipherSuite(Algorithm.AES_GCM, key, 12)  # truncated tag (SP 800-38D §5.2.1.2)
    assert short.seal(iv, pt, aad) == (ct, tag[:12])
    assert short.open(iv, ct, tag[:12], aad) == pt
    assert short.open(iv, ct, bytes(12), aad) is None
    assert suite.encrypt(iv, pt) == ct and suite.decrypt(iv, ct) == pt


def test_gmac_is_gcm_with_empty_plaintext() -> None:
    """GCM spec Test Case 13 (AES-256, zero key and IV, no data): tag 530f8afb..."""
    suite = CipherSuite(Algorithm.AES_GCM, bytes(32), 16)
    assert suite.mac(bytes(12), b"").hex() == "530f8afbc74536b9a963b4f1c4cb738b"


def test_rfc4493_cmac() -> None:
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    suite = CipherSuite(Algorithm.AES_CMAC, key, 16)
    assert suite.mac(b"", b"").hex() == "bb1d6929e95937287fa37d129b756746"  # Example 1
    msg = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert suite.mac(b"", msg).hex() == "070a16b46b4d4144f79bdd9dd04a287c"  # Example 2
    assert suite.verify(b"", msg, bytes.fromhex("070a16b46b4d4144f79bdd9dd04a287c"))


def test_rfc4231_hmac_sha256() -> None:
    suite = CipherSuite(Algorithm.HMAC_SHA256, b"\x0b" * 20, 32)  # Test Case 1
    assert suite.mac(b"", b"Hi There").hex() == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    assert hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == (  # Test Case 2
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    assert CipherSuite(Algorithm.HMAC_SHA256, b"\x0b" * 20, 16).mac(b"", b"Hi There") == (
        bytes.fromhex("b0344c61d8db38535ca8afceaf0bf12b"))


# --------------------------------------------------------------------------------------
# Extended Procedures PDUs: CryptoLib test/unit/ut_ep_sa_mgmt.c and ut_ep_key_mgmt.c. In
# those frames the PDU starts at octet 18 (TC header 5, segment header 1, SPI 0000, Space
# Packet header 6, PUS header 4).
# --------------------------------------------------------------------------------------

EP_VECTORS = [
    # (UTEST, frame, procedure)
    ("EP_SA_MGMT, SA_4_READ_ARSN", "2003001600ff00001980d0b0000a197f0b001000100004",
     ReadArsn(4)),
    ("EP_SA_MGMT, SA_6_STATUS", "2003001600ff00001980d0b00008197f0b001f00100006",
     SaStatusRequest(6)),
    ("EP_SA_MGMT, SA_6_SET_ARSNW", "2003001700ff00001980d0b1000a197f0b00150018000609",
     SetArsnWindow(6, 9)),
    ("EP_KEY_MGMT, TLV_KEY_DEACTIVATE_TESTS (TLV_ONE_KEY)",
     "2003001600ff00001980d0390009197f0b00030010008e", KeyDeactivation((142,))),
    ("EP_KEY_MGMT, TLV_KEY_DEACTIVATE_TESTS (TLV_TEN_KEYS)",
     "2003002800ff00001980d039001A197f0b000300A0008000810082008300840085008600870088"
     "0089", KeyDeactivation(tuple(range(0x80, 0x8A)))),
]


@pytest.mark.parametrize(("utest", "frame", "procedure"), EP_VECTORS,
                         ids=[v[0] for v in EP_VECTORS])
def test_cryptolib_ep_pdus(utest: str, frame: str, procedure: object) -> None:
    pdu = bytes.fromhex(frame)[18:]
    assert decode_procedure(pdu) == procedure
    assert procedure.encode() == pdu  # type: ignore[attr-defined]


def test_start_sa_gvcid_layout() -> None:
    """GVCID = TFVN 4 | SCID 16 | VCID 6 | MAP 6 (ut_ep_sa_mgmt.c SA_START_6 comment:
    ``0006 | 0 | 0003 | 000000 | 000000`` for TFVN 0, SCID 3, VCID 0, MAP 0; ...3042 is
    VCID 1, MAP 2)."""
    pdu = StartSa(6, (Gvcid(0, 3, 0, 0), Gvcid(0, 3, 1, 2))).encode()
    assert pdu.hex() == "1b0050" "0006" "00003000" "00003042"
    assert decode_procedure(pdu) == StartSa(6, (Gvcid(0, 3, 0, 0), Gvcid(0, 3, 1, 2)))
    assert KeyActivation((141, 142)).encode().hex() == "020020008d008e"


# --------------------------------------------------------------------------------------
# The Security Header declaration and the fast path agree
# --------------------------------------------------------------------------------------

@given(st.integers(0, 0xFFFF), st.binary(max_size=16), st.binary(max_size=4),
       st.integers(0, 2), st.data())
def test_security_header_matches_construct(spi: int, iv: bytes, sn: bytes, pl_len: int,
                                           data: st.DataObject) -> None:
    pad = data.draw(st.integers(0, (1 << (8 * pl_len)) - 1)) if pl_len else None
    hdr = SecurityHeader(spi, iv, sn, pad, pl_len)
    raw = hdr.encode()
    params = {"iv_length": len(iv), "sn_length": len(sn), "pad_length_field_length": pl_len}
    built = SECURITY_HEADER.build({"spi": spi, "iv": iv, "sequence_number": sn,
                                   "pad_length": pad}, **params)
    assert raw == built and len(raw) == hdr.size
    parsed = SECURITY_HEADER.parse(raw, **params)
    assert (parsed.spi, parsed.iv, parsed.sequence_number, parsed.pad_length) == (
        spi, iv, sn, pad)
    assert SecurityHeader.decode(raw, iv_length=len(iv), sn_length=len(sn),
                                 pad_length_field_length=pl_len) == hdr


def test_service_type_flags() -> None:
    assert ServiceType.AUTHENTICATED_ENCRYPTION.encrypts
    assert ServiceType.AUTHENTICATED_ENCRYPTION.authenticates
    assert not ServiceType.AUTHENTICATION.encrypts
    assert not ServiceType.ENCRYPTION.authenticates
