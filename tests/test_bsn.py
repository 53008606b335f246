"""BSN normalisation and elfproef (privacy/bsn.py): the reference every other check follows."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privacy.bsn import (
    REASON_ALL_ZEROS,
    REASON_ELFPROEF,
    REASON_FORMAT,
    REASON_MISSING,
    bsn_rejection_reason,
    looks_like_raw_bsn,
    normalise_bsn,
    passes_elfproef,
)
from tests.helpers import make_valid_bsn


@pytest.mark.parametrize("bsn", ["123456782", "249566758"])
def test_documented_examples_pass(bsn):
    assert passes_elfproef(bsn)
    assert bsn_rejection_reason(bsn) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123456782", "123456782"),
        ("1234.56.782", "123456782"),
        ("123 456 782", "123456782"),
        (" 12.34 56.782 ", "123456782"),
        ("12345678", "012345678"),
        ("1234567", None),
        ("1234567890", None),
        ("12345678a", None),
        ("١٢٣٤٥٦٧٨٢", None),  # Arabic-Indic digits are not ASCII digits
        ("", None),
        (None, None),
    ],
)
def test_normalise(raw, expected):
    assert normalise_bsn(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, REASON_MISSING),
        ("", REASON_MISSING),
        (" . ", REASON_MISSING),
        ("12-34-56-782", REASON_FORMAT),
        ("1234567", REASON_FORMAT),
        ("000000000", REASON_ALL_ZEROS),
        ("00000000", REASON_ALL_ZEROS),
        ("123456783", REASON_ELFPROEF),
        ("123456782", None),
    ],
)
def test_rejection_reasons(raw, reason):
    assert bsn_rejection_reason(raw) == reason


def test_an_eight_digit_bsn_is_valid_after_padding():
    rnd = random.Random(3)
    bsn = next(b for b in (make_valid_bsn(rnd) for _ in range(10_000)) if b.startswith("0"))
    assert bsn_rejection_reason(bsn[1:]) is None
    assert normalise_bsn(bsn[1:]) == bsn


@given(
    st.integers(min_value=0, max_value=10**9 - 1),
    st.integers(min_value=0, max_value=8),
    st.integers(min_value=1, max_value=9),
)
def test_changing_one_digit_always_breaks_the_elfproef(seed, position, delta):
    bsn = make_valid_bsn(random.Random(seed))
    digits = list(bsn)
    digits[position] = str((int(digits[position]) + delta) % 10)
    changed = "".join(digits)
    # Weights 9..2 and -1 are all non-zero mod 11, so a single-digit change is always caught.
    assert not passes_elfproef(changed) or changed == "000000000"


def test_leak_guard_spots_formatted_bsns_only():
    assert looks_like_raw_bsn("123456782")
    assert looks_like_raw_bsn("1234.56.782")
    assert looks_like_raw_bsn("123 456 782")
    assert not looks_like_raw_bsn("123456783")
    assert not looks_like_raw_bsn("12345678")  # 8 digits: not a raw BSN in a text field
    assert not looks_like_raw_bsn("CJIB-123456782")
    assert not looks_like_raw_bsn(None)


_LEAK_TEXT = st.one_of(
    st.text(alphabet="0123456789 .", min_size=0, max_size=14),
    st.text(alphabet="0123456789 .-aZé€", min_size=0, max_size=14),
    st.builds(
        lambda b, pre, post: pre + b + post,
        st.sampled_from(["123456782", "249566758"]),
        st.sampled_from(["", " ", ".", "x", "é", "0"]),
        st.sampled_from(["", " ", ".", "x"]),
    ),
)


@given(st.lists(_LEAK_TEXT, min_size=1, max_size=40))
def test_the_sql_leak_guard_agrees_with_python(values):
    """The hub's leak guard in SQL (`looks_like_raw_bsn` in sql/privacy/bsn_macros.sql, with its
    cheap exact pre-tests) says what privacy.bsn says, value by value."""
    import duckdb

    from pipelines.sql import run_script

    with duckdb.connect() as con:
        run_script(con, "privacy/bsn_macros")
        con.execute("create table v (i integer, t varchar)")
        con.executemany("insert into v values (?, ?)", list(enumerate(values)))
        found = dict(con.execute("select i, looks_like_raw_bsn(t) from v").fetchall())
    assert [found[i] for i in range(len(values))] == [looks_like_raw_bsn(v) for v in values]
