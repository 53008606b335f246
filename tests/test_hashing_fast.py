"""Keyed hashing in bulk: the HMAC over a whole column equals Python's `hmac`, row by row.

The partner tool (and the bench of issue 17) hash whole tables in one DuckDB query with
`hmac_sql`; `tests/test_hashing.py` checks one value at a time. These properties check the batch:
random keys (also longer than a SHA-256 block, which RFC 2104 hashes first), random byte strings,
real 9-digit BSNs, and batch sizes 0, 1 and odd ones on either side of DuckDB's 2,048-row vector,
so that any faster implementation can be held to the same oracle, `hmac.new`.
"""

from __future__ import annotations

import hashlib
import hmac
import random

import duckdb
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from privacy.hashing import hmac_pads, hmac_sql, hmac_sql_parameters, pseudonym
from tests.helpers import make_valid_bsn

# Either side of DuckDB's vector size (2,048 rows): a batch boundary bug shows up there.
BATCH_SIZES = (0, 1, 3, 2047, 2049)

keys = st.binary(max_size=200)
bsns = st.integers(min_value=0, max_value=2**32).map(
    lambda seed: make_valid_bsn(random.Random(seed))
)


def reference(key: bytes, messages: list[bytes]) -> list[str]:
    return [hmac.new(key, m, hashlib.sha256).hexdigest() for m in messages]


def sql_batch(key: bytes, column: pa.Array, message_sql: str) -> list[str]:
    """HMAC of every row of `column` in one query, in row order; the key only as bound pads."""
    table = pa.table({"i": pa.array(range(len(column)), pa.int64()), "value": column})
    with duckdb.connect() as con:
        con.register("batch", table)
        rows = con.execute(
            f"select {hmac_sql(message_sql)} from batch order by i", hmac_sql_parameters(key)
        ).fetchall()
    return [row[0] for row in rows]


def bytes_batch(key: bytes, messages: list[bytes]) -> list[str]:
    return sql_batch(key, pa.array(messages, pa.binary()), "value")


def bsn_batch(key: bytes, values: list[str]) -> list[str]:
    """As the partner tool hashes: the normalised BSN as VARCHAR, `encode`d to its ASCII bytes."""
    return sql_batch(key, pa.array(values, pa.string()), "encode(value)")


@settings(max_examples=40, deadline=None)
@given(keys, st.lists(st.binary(max_size=150), max_size=41))
@example(b"", [b""])
@example(b"k" * 64, [b"123456782"])
@example(b"k" * 65, [b"123456782", b""])
def test_batch_equals_hmac_for_random_keys_and_messages(key, messages):
    assert bytes_batch(key, messages) == reference(key, messages)


@settings(max_examples=40, deadline=None)
@given(keys, st.lists(bsns, max_size=41))
def test_batch_equals_the_pseudonym_of_real_bsns(key, values):
    got = bsn_batch(key, values)
    assert got == [pseudonym(key, v) for v in values]
    assert got == reference(key, [v.encode("ascii") for v in values])


@pytest.mark.parametrize("size", BATCH_SIZES)
@pytest.mark.parametrize("key_size", [32, 64, 100])
def test_batch_sizes(size, key_size):
    rnd = random.Random(size * 1000 + key_size)
    key = rnd.randbytes(key_size)
    values = [make_valid_bsn(rnd) for _ in range(size)]
    assert bsn_batch(key, values) == reference(key, [v.encode("ascii") for v in values])


def test_a_failing_query_shows_neither_key_nor_pads():
    """The key travels only as bound pads; DuckDB's errors quote the query text, never a value."""
    key = bytes(range(32))
    pads = hmac_pads(key)
    with duckdb.connect() as con, pytest.raises(duckdb.Error) as failure:
        con.execute(f"select {hmac_sql('missing_column')}", hmac_sql_parameters(key))
    text = str(failure.value)
    for secret in (key, pads.inner, pads.outer):
        assert secret.hex() not in text.lower()
        assert secret.hex().upper() not in text
        assert repr(secret)[2:-1] not in text
