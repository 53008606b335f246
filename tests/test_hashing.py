"""Keyed hashing: the DuckDB HMAC path equals Python's hmac, byte for byte (RFC 4231 + random)."""

import hashlib
import hmac

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.hashing import hmac_pads, hmac_sql, hmac_sql_parameters, pseudonym

# RFC 4231 section 4: HMAC-SHA-256 test cases (key, data, expected MAC).
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. "
        b"The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


def duckdb_hmac(key: bytes, message: bytes) -> str:
    with duckdb.connect() as con:
        return con.execute(
            f"select {hmac_sql('$message')}", {**hmac_sql_parameters(key), "message": message}
        ).fetchone()[0]


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231)
def test_rfc4231_vectors_python(key, data, expected):
    assert pseudonym(key, data) == expected


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231)
def test_rfc4231_vectors_duckdb(key, data, expected):
    assert duckdb_hmac(key, data) == expected


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.binary(max_size=300))
def test_duckdb_hmac_equals_python_hmac(key, message):
    assert duckdb_hmac(key, message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_pseudonym_is_lowercase_hex_of_hmac_over_the_ascii_bsn():
    secret = bytes(range(32))
    value = pseudonym(secret, "123456782")
    assert value == hmac.new(secret, b"123456782", hashlib.sha256).hexdigest()
    assert len(value) == 64 and value == value.lower()


def test_pads_never_show_in_repr():
    pads = hmac_pads(b"k" * 32)
    assert "k" * 8 not in repr(pads) and "\\x" not in repr(pads)
