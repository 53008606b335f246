"""Sealed identities (interfaces.md section 3): a BSN a partner seals for one gemeente.

The hub links people by keyed hash and can never read a BSN, yet a gemeente can only help a
person it can find. So the partner seals each BSN for the gemeente of the claim, and the hub
merely routes the sealed value of a signalled person to the gemeente it signals (a blind router):

- per delivery and gemeente a fresh random 32-byte key `K`;
- `identity_sealed` = base64(nonce || AES-256-GCM(K, nonce, bsn9, aad)), a random 12-byte nonce,
  the 9 ASCII digits of the normalised BSN as plaintext and `<PARTNER>|<extract_date>|<GMxxxx>`
  as associated data, so a value moved to another gemeente's file, or under another partner's
  or date's key, does not open;
- `identity-keys/<GMxxxx>.p7m` = `K` as CMS EnvelopedData (DER, AES-256-CBC content encryption)
  to the gemeente's certificate, which stock OpenSSL opens:
  `openssl cms -decrypt -binary -inform DER -in GMxxxx.p7m -inkey GM.key -recip GM.crt`.

The partner tool (`pipelines.pseudonymise`) seals; the gemeente side (`pipelines.gemeente`)
opens. The hub only checks the format (`identities` contract) and copies. Keys and BSNs are
never logged; errors name what failed, never a value.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import pkcs7

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
BSN_DIGITS = 9
# base64 of nonce + ciphertext of 9 digits + tag (37 bytes): 52 characters ending in '=='
SEALED_LENGTH = 4 * -(-(NONCE_BYTES + BSN_DIGITS + TAG_BYTES) // 3)
SEALED_PATTERN = f"^[A-Za-z0-9+/]{{{SEALED_LENGTH - 2}}}==$"
KEYS_FOLDER = "identity-keys"
KEY_SUFFIX = ".p7m"


class SealError(Exception):
    """A key file or sealed value does not open; the text says which, never a key or value."""


def associated_data(partner: str, extract_date: dt.date | str, gemeente: str) -> bytes:
    """What binds a sealed value to its partner, extract date and gemeente."""
    day = extract_date.isoformat() if isinstance(extract_date, dt.date) else extract_date
    return f"{partner}|{day}|{gemeente}".encode("ascii")


def key_name(partner: str, extract_date: dt.date | str) -> str:
    """`<PARTNER>-<extract_date>`: the `identity_key` of a signal and its key file's stem in
    the outbox (`identity-keys/<PARTNER>-<extract_date>.p7m`)."""
    day = extract_date.isoformat() if isinstance(extract_date, dt.date) else extract_date
    return f"{partner}-{day}"


def split_key_name(name: str) -> tuple[str, str]:
    """(partner, extract_date) of an `identity_key`; SealError when it is not one."""
    partner, _, day = name.partition("-")
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise SealError(f"identity_key {name!r} is not <PARTNER>-<YYYY-MM-DD>") from None
    if not partner.isalnum():
        raise SealError(f"identity_key {name!r} is not <PARTNER>-<YYYY-MM-DD>")
    return partner, day


def new_identity_key() -> bytes:
    """A fresh random AES-256 key for one delivery and gemeente."""
    return AESGCM.generate_key(bit_length=8 * KEY_BYTES)


def seal_identities(key: bytes, bsns: Iterable[str], aad: bytes) -> list[str]:
    """Seal normalised 9-digit BSNs under one key; a fresh random nonce for each value.

    The nonces come from one call to the OS random source (a call per value costs more than
    the encryption). Random 96-bit nonces are safe far beyond the values one gemeente's key
    seals in one delivery (NIST SP 800-38D: up to 2**32 per key)."""
    values = list(bsns)
    _check_key(key)
    aead = AESGCM(key)
    nonces = os.urandom(NONCE_BYTES * len(values))
    sealed = []
    for index, bsn in enumerate(values):
        if len(bsn) != BSN_DIGITS or not bsn.isdigit():
            raise SealError(f"value {index + 1} is not a normalised 9-digit BSN")
        nonce = nonces[index * NONCE_BYTES : (index + 1) * NONCE_BYTES]
        sealed.append(
            base64.b64encode(nonce + aead.encrypt(nonce, bsn.encode("ascii"), aad)).decode("ascii")
        )
    return sealed


def _check_key(key: bytes) -> None:
    """AES-256 only: AESGCM would also take a 16- or 24-byte key."""
    if len(key) != KEY_BYTES:
        raise SealError(f"an identity key is {KEY_BYTES} bytes, not {len(key)}")


def open_identity(key: bytes, sealed: str, aad: bytes) -> str:
    """The BSN in one sealed value; SealError when it was tampered with or sealed for another
    gemeente, partner or date (the tag then does not verify)."""
    _check_key(key)
    try:
        raw = base64.b64decode(sealed, validate=True)
    except (binascii.Error, ValueError):
        raise SealError("the sealed identity is not base64") from None
    if len(raw) != NONCE_BYTES + BSN_DIGITS + TAG_BYTES:
        raise SealError("the sealed identity has the wrong length")
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except InvalidTag:
        raise SealError(
            "the sealed identity does not open: tampered with, or sealed for another "
            "gemeente, partner or date"
        ) from None
    return plain.decode("ascii")


def wrap_key(key: bytes, certificate: x509.Certificate) -> bytes:
    """`K` as CMS EnvelopedData (DER) to one gemeente's certificate (AES-256 content
    encryption, RSA key transport), as `openssl cms -decrypt -binary` opens it."""
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(key)
        .set_content_encryption_algorithm(algorithms.AES256)
        .add_recipient(certificate)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def unwrap_key(
    message: bytes, certificate: x509.Certificate, private_key: rsa.RSAPrivateKey
) -> bytes:
    """Open a key file with the gemeente's certificate and private key."""
    try:
        key = pkcs7.pkcs7_decrypt_der(message, certificate, private_key, [])
    except ValueError:
        raise SealError(
            "the key file does not open with this certificate and key (it was made for "
            "another gemeente, or is damaged)"
        ) from None
    if len(key) != KEY_BYTES:
        raise SealError(f"the key file holds {len(key)} bytes, not a {KEY_BYTES}-byte key")
    return key


def key_file(folder: Path, gemeente: str) -> Path:
    """A partner delivery's key file for one gemeente: `<folder>/identity-keys/<GM>.p7m`."""
    return Path(folder) / KEYS_FOLDER / f"{gemeente}{KEY_SUFFIX}"
