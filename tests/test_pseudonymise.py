"""Partner-side pseudonymisation: exact pseudonyms, reject files without values, manifests."""

import hashlib
import hmac
import json
import random
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.fileio import sha256_file
from pipelines.pseudonymise import PseudonymiseError, pseudonymise_extract
from privacy.bsn import bsn_rejection_reason, normalise_bsn
from privacy.keys import new_key
from tests.helpers import EXTRACT_DATE, make_valid_bsn, raw_claims_frame, write_raw_csv

KEY = new_key("linkage")


def expected_pseudonym(raw: str) -> str:
    return hmac.new(KEY.secret, normalise_bsn(raw).encode(), hashlib.sha256).hexdigest()


def run(tmp: Path, bsns, fmt="csv", partner="CJIB"):
    frame = raw_claims_frame(bsns, partner)
    raw = tmp / "raw" / f"claims.{fmt}"
    raw.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        write_raw_csv(frame, raw)
    else:
        frame.write_parquet(raw)
    result = pseudonymise_extract(
        raw, tmp / "out", key=KEY, partner=partner, extract_date=EXTRACT_DATE
    )
    return frame, result


def test_pseudonyms_equal_hmac_of_the_normalised_bsn(tmp_path):
    rnd = random.Random(11)
    plain = [make_valid_bsn(rnd) for _ in range(20)]
    eight = next(b for b in (make_valid_bsn(rnd) for _ in range(10_000)) if b[0] == "0")
    raw = [
        *plain,
        f"{plain[0][:4]}.{plain[0][4:6]}.{plain[0][6:]}",
        f"{plain[1][:3]} {plain[1][3:6]} {plain[1][6:]}",
        eight[1:],
    ]
    _, result = run(tmp_path, raw)
    out = pl.read_csv(result.data_path, separator=";", infer_schema=False)
    assert out["person_pseudonym"].to_list() == [expected_pseudonym(b) for b in raw]
    assert out["person_pseudonym"][20] == out["person_pseudonym"][0]  # dotted = same person
    assert (
        out["person_pseudonym"][22]
        == hmac.new(KEY.secret, eight.encode(), hashlib.sha256).hexdigest()
    )
    assert result.rows_rejected == 0 and result.reject_path is None


def test_manifest_describes_the_data_file(tmp_path):
    _, result = run(tmp_path, [make_valid_bsn(random.Random(1)) for _ in range(5)])
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest == {
        "contract": "claims",
        "contract_version": "1.0.0",
        "partner": "CJIB",
        "extract_date": "2026-11-22",
        "key_id": KEY.key_id,
        "file": "claims.csv",
        "sha256": sha256_file(result.data_path),
        "row_count": 5,
    }
    header = result.data_path.read_text().splitlines()[0]
    assert header == (
        "person_pseudonym;claim_ref;claim_type;imposed_cents;outstanding_cents;"
        "arrears_cents;arrears_since;stage;debt_assistance;gemeente_code"
    )


def test_invalid_bsns_go_to_the_reject_file_without_their_values(tmp_path):
    rnd = random.Random(5)
    good = [make_valid_bsn(rnd) for _ in range(4)]
    bad = ["123456783", "", "12345", "000000000"]
    raw = [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3], good[3]]
    _, result = run(tmp_path, raw)
    assert result.rows_written == 4 and result.rows_rejected == 4
    rejects = result.reject_path.read_text().splitlines()
    assert rejects == [
        "line;reason",
        "3;bsn_fails_elfproef",
        "5;bsn_missing",
        "6;bsn_not_8_or_9_digits",
        "8;bsn_all_zeros",
    ]
    # No output file holds any raw BSN, valid or not.
    for path in (tmp_path / "out").iterdir():
        text = path.read_text()
        for value in [*good, "123456783", "12345"]:
            assert value not in text, (path.name, "leaks a raw BSN")


def test_parquet_in_parquet_out_with_integer_bsns(tmp_path):
    rnd = random.Random(8)
    bsns = [make_valid_bsn(rnd) for _ in range(10)]
    frame = raw_claims_frame(bsns).with_columns(pl.col("bsn").cast(pl.Int64))
    raw = tmp_path / "raw" / "claims.parquet"
    raw.parent.mkdir()
    frame.write_parquet(raw)
    result = pseudonymise_extract(
        raw, tmp_path / "out", key=KEY, partner="CJIB", extract_date=EXTRACT_DATE
    )
    out = pl.read_parquet(result.data_path)
    assert out.columns[0] == "person_pseudonym"
    assert out["person_pseudonym"].to_list() == [expected_pseudonym(b) for b in bsns]
    assert out.schema["outstanding_cents"] == pl.Int64  # types kept
    assert json.loads(result.manifest_path.read_text())["file"] == "claims.parquet"


def test_a_bom_on_the_header_is_accepted(tmp_path):
    bsn = make_valid_bsn(random.Random(2))
    raw = tmp_path / "claims.csv"
    write_raw_csv(raw_claims_frame([bsn]), raw)
    raw.write_bytes(b"\xef\xbb\xbf" + raw.read_bytes())
    result = pseudonymise_extract(
        raw, tmp_path / "out", key=KEY, partner="CJIB", extract_date=EXTRACT_DATE
    )
    assert result.rows_written == 1


def test_values_are_passed_through_unchanged(tmp_path):
    _, result = run(tmp_path, [make_valid_bsn(random.Random(4)) for _ in range(3)])
    out = pl.read_csv(result.data_path, separator=";", infer_schema=False)
    raw = pl.read_csv(tmp_path / "raw" / "claims.csv", separator=";", infer_schema=False)
    assert out.drop("person_pseudonym").equals(raw.drop("bsn"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("stage"), "missing column"),
        (lambda f: f.with_columns(pl.lit("Jan").alias("name")), "unexpected column"),
    ],
)
def test_wrong_columns_are_refused(tmp_path, change, message):
    raw = write_raw_csv(change(raw_claims_frame(["123456782"])), tmp_path / "claims.csv")
    with pytest.raises(PseudonymiseError, match=message):
        pseudonymise_extract(
            raw, tmp_path / "out", key=KEY, partner="CJIB", extract_date=EXTRACT_DATE
        )


def test_unknown_partner_and_income_from_another_partner(tmp_path):
    raw = write_raw_csv(raw_claims_frame(["123456782"]), tmp_path / "claims.csv")
    with pytest.raises(PseudonymiseError, match="unknown partner"):
        pseudonymise_extract(
            raw, tmp_path / "o", key=KEY, partner="NVWA", extract_date=EXTRACT_DATE
        )
    income = tmp_path / "income.csv"
    income.write_text(
        "bsn;household_type;net_income_cents;income_month\n123456782;single;150000;2026-10-01\n"
    )
    with pytest.raises(PseudonymiseError, match="does not deliver income"):
        pseudonymise_extract(
            income, tmp_path / "o", key=KEY, partner="CJIB", extract_date=EXTRACT_DATE
        )


def test_file_name_must_name_the_dataset(tmp_path):
    raw = write_raw_csv(raw_claims_frame(["123456782"]), tmp_path / "extract.csv")
    with pytest.raises(PseudonymiseError, match="cannot tell the dataset"):
        pseudonymise_extract(
            raw, tmp_path / "o", key=KEY, partner="CJIB", extract_date=EXTRACT_DATE
        )


def test_hub_key_is_refused(tmp_path):
    raw = write_raw_csv(raw_claims_frame(["123456782"]), tmp_path / "claims.csv")
    with pytest.raises(PseudonymiseError, match="linkage key"):
        pseudonymise_extract(
            raw, tmp_path / "o", key=new_key("hub"), partner="CJIB", extract_date=EXTRACT_DATE
        )


def test_a_rerun_without_rejects_removes_the_old_reject_file(tmp_path):
    _, first = run(tmp_path, ["123456783", "123456782"])
    assert first.reject_path.exists()
    _, second = run(tmp_path, ["123456782"])
    assert second.reject_path is None
    assert not (tmp_path / "out" / "claims.rejects.csv").exists()


bsn_like = st.one_of(
    st.text(alphabet="0123456789 .x", max_size=12),
    st.integers(0, 10**9 - 1).map(lambda i: f"{i:09d}"),
    st.integers(0, 10**9 - 1).map(lambda i: make_valid_bsn(random.Random(i))),
    st.integers(0, 10**9 - 1).map(lambda i: make_valid_bsn(random.Random(i)).lstrip("0")),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(bsn_like, min_size=1, max_size=40))
def test_sql_checks_and_hashes_exactly_like_the_python_reference(values):
    """The SQL fast path and privacy/bsn.py + hmac agree on every row: same verdict, same hash."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = [v if v.strip(" .") else None for v in values]
        _, result = run(Path(tmp), raw)
        out = pl.read_csv(result.data_path, separator=";", infer_schema=False)
        rejects = (
            pl.read_csv(result.reject_path, separator=";", infer_schema=False)
            if result.reject_path
            else pl.DataFrame({"line": [], "reason": []})
        )
        expected_ok = [v for v in raw if bsn_rejection_reason(v) is None]
        expected_rejects = [
            (str(i + 2), bsn_rejection_reason(v))
            for i, v in enumerate(raw)
            if bsn_rejection_reason(v) is not None
        ]
        assert out["person_pseudonym"].to_list() == [expected_pseudonym(v) for v in expected_ok]
        assert (
            list(zip(rejects["line"].to_list(), rejects["reason"].to_list(), strict=True))
            == expected_rejects
        )
