"""Cryptographic services of an SA, on pyca ``cryptography`` (CCSDS 355.0-B-2 §2.3, 352.0-B-2).

Three services (355.0-B-2 §2.3.1-2.3.3) over the baseline algorithms of CCSDS 352.0-B-2
(Cryptographic Algorithms):

- **authenticated encryption**: AES-GCM (128- or 256-bit key); the AAD is the masked
  frame headers and Security Header, the MAC is the GCM tag (optionally truncated);
- **authentication only**: GMAC (= GCM with an empty plaintext, everything as AAD), AES-CMAC
  (RFC 4493) or HMAC-SHA-256 (RFC 2104/4231), truncated to the SA's MAC length;
- **encryption only**: the GCM keystream without a tag (what CryptoLib does for an SA with
  ``est=1, ast=0``); there is no integrity, so use it only to interoperate.

With a 96-bit IV, GCM encryption is AES-CTR starting at counter block ``IV || 00000002``
(SP 800-38D §7.1); encryption-only decryption relies on that symmetry (encrypting the
ciphertext with the same IV gives the plaintext back), which works for any IV length.

:class:`CipherSuite` binds one algorithm, one key and one MAC length. The key lives only in
the pyca objects and a private slot; ``repr``/``str`` never show it. MACs are compared in
constant time.
"""

from __future__ import annotations

import hmac as _hmac
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives import hmac as pyca_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "GCM_MAC_LENGTHS",
    "GCM_TAG_SIZE",
    "Algorithm",
    "CipherSuite",
    "ServiceType",
    "aes_cmac",
    "hmac_sha256",
]

GCM_TAG_SIZE = 16
GCM_MAC_LENGTHS = frozenset({4, 8, 12, 13, 14, 15, 16})
"""Tag lengths SP 800-38D §5.2.1.2 allows (32 and 64 bits only for special uses)."""


class ServiceType(StrEnum):
    """The security service an SA provides (355.0-B-2 §2.3)."""

    ENCRYPTION = "encryption"
    AUTHENTICATION = "authentication"
    AUTHENTICATED_ENCRYPTION = "authenticated_encryption"

    @property
    def encrypts(self) -> bool:
        return self is not ServiceType.AUTHENTICATION

    @property
    def authenticates(self) -> bool:
        return self is not ServiceType.ENCRYPTION


class Algorithm(StrEnum):
    """Cryptographic algorithm of an SA (352.0-B-2 baseline plus HMAC-SHA-256)."""

    AES_GCM = "aes-gcm"
    AES_CMAC = "aes-cmac"
    HMAC_SHA256 = "hmac-sha256"

    @property
    def key_lengths(self) -> frozenset[int]:
        """Key lengths in octets this algorithm accepts."""
        if self is Algorithm.HMAC_SHA256:
            return frozenset(range(16, 65))
        return frozenset({16, 32})

    @property
    def max_mac_length(self) -> int:
        return 32 if self is Algorithm.HMAC_SHA256 else 16


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC of ``data`` (RFC 4493, NIST SP 800-38B), 16 octets."""
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA-256 of ``data`` (RFC 2104, FIPS 198-1), 32 octets."""
    mac = pyca_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


class CipherSuite:
    """One algorithm, one key, one MAC length: the cryptographic half of an SA.

    Methods take the full IV (not only its transmitted part) and already-masked AAD.
    """

    __slots__ = ("_aead", "_key", "algorithm", "mac_length")

    def __init__(self, algorithm: Algorithm, key: bytes, mac_length: int) -> None:
        self.algorithm = Algorithm(algorithm)
        self.mac_length = mac_length
        self._key = bytes(key)
        self._aead = AESGCM(self._key) if self.algorithm is Algorithm.AES_GCM else None

    def __repr__(self) -> str:
        return (f"CipherSuite({self.algorithm.value}, {8 * len(self._key)}-bit key, "
                f"mac_length={self.mac_length})")

    __str__ = __repr__

    def _gcm(self) -> AESGCM:
        if self._aead is None:
            raise TypeError(f"{self.algorithm.value} has no GCM mode")
        return self._aead

    # -- authenticated encryption (AES-GCM) ---------------------------------------------

    def seal(self, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Authenticated encryption: ``(ciphertext, mac)`` (GCM, tag cut to ``mac_length``)."""
        out = self._gcm().encrypt(iv, plaintext, aad)
        return out[:-GCM_TAG_SIZE], out[-GCM_TAG_SIZE:][:self.mac_length]

    def open(self, iv: bytes, ciphertext: bytes, mac: bytes, aad: bytes) -> bytes | None:
        """Authenticated decryption: the plaintext, or None if the MAC does not verify."""
        aead = self._gcm()
        try:
            if self.mac_length == GCM_TAG_SIZE:
                return aead.decrypt(iv, ciphertext + mac, aad)
            decryptor = Cipher(
                algorithms.AES(self._key), modes.GCM(iv, mac, min_tag_length=self.mac_length)
            ).decryptor()
            decryptor.authenticate_additional_data(aad)
            return decryptor.update(ciphertext) + decryptor.finalize()
        except (InvalidTag, ValueError):
            return None

    # -- encryption only (GCM keystream, no tag) ----------------------------------------

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes:
        """Encryption without authentication: the GCM ciphertext, tag dropped."""
        return self._gcm().encrypt(iv, plaintext, None)[:-GCM_TAG_SIZE]

    def decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        """Inverse of :meth:`encrypt` (CTR mode is its own inverse)."""
        return self.encrypt(iv, ciphertext)

    # -- authentication only --------------------------------------------------------------

    def mac(self, iv: bytes, data: bytes) -> bytes:
        """The MAC of ``data`` (already masked): GMAC, AES-CMAC or HMAC-SHA-256, truncated."""
        if self.algorithm is Algorithm.AES_GCM:
            tag = self._gcm().encrypt(iv, b"", data)
        elif self.algorithm is Algorithm.AES_CMAC:
            tag = aes_cmac(self._key, data)
        else:
            tag = hmac_sha256(self._key, data)
        return tag[:self.mac_length]

    def verify(self, iv: bytes, data: bytes, mac: bytes) -> bool:
        """True iff ``mac`` is the MAC of ``data`` (constant-time comparison)."""
        return _hmac.compare_digest(self.mac(iv, data), bytes(mac))
