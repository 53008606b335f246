"""Partner side of sealed identities (interfaces.md section 3): real crypto, no mocks.

Each row of `identities.<fmt>` must open, with the key file of its gemeente (opened by our own
code and by stock `openssl cms`), to exactly the BSN whose HMAC is the row's pseudonym; nothing
else may open it, and no BSN may appear anywhere in the delivery or the logs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from cryptography.hazmat.primitives import serialization

from pipelines.fileio import sha256_file
from pipelines.pseudonymise import PseudonymiseError, pseudonymise_extract
from privacy.bsn import bsn_rejection_reason, normalise_bsn
from privacy.cms import create_demo_certificates, load_certificate
from privacy.keys import new_key
from privacy.sealing import (
    KEYS_FOLDER,
    SEALED_PATTERN,
    SealError,
    associated_data,
    key_file,
    open_identity,
    unwrap_key,
)
from tests.helpers import EXTRACT_DATE, make_valid_bsn, raw_claims_frame, write_raw_csv

KEY = new_key("linkage")
PARTNER = "CJIB"
GEMEENTEN = ("GM0014", "GM0363", "GM0599")
IDENTITY_HEADER = "person_pseudonym;gemeente_code;identity_sealed"


def _bsns() -> tuple[list[str], list[str]]:
    """(raw BSN texts of the extract, the valid ones' 9-digit forms). Includes people with two
    claims, a person in two gemeenten, dotted, spaced and 8-digit forms, and invalid BSNs."""
    rnd = random.Random(20261122)
    valid = [make_valid_bsn(rnd) for _ in range(24)]
    eight = next(b for b in (make_valid_bsn(rnd) for _ in range(10_000)) if b[0] == "0")
    raw = [
        *valid,
        valid[0],  # a second claim of the same person, same gemeente
        f"{valid[1][:4]}.{valid[1][4:6]}.{valid[1][6:]}",  # same person, dotted
        f"{valid[2][:3]} {valid[2][3:6]} {valid[2][6:]}",  # same person, spaced
        eight[1:],  # 8 digits: a leading zero is added
        "123456783",  # fails the elfproef
        "",  # missing
        "12345",  # too short
        "000000000",  # all zeros
    ]
    return raw, [*valid, eight]


RAW_BSNS, VALID_BSN9 = _bsns()
INVALID_BSNS = ("123456783", "12345", "000000000")


def _gemeenten_of(n: int) -> list[str]:
    codes = [GEMEENTEN[i % len(GEMEENTEN)] for i in range(n)]
    codes[24] = codes[0]  # the second claim of person 0: same gemeente
    codes[25] = GEMEENTEN[(GEMEENTEN.index(codes[1]) + 1) % 3]  # person 1 in a second gemeente
    return codes


def claims_frame() -> pl.DataFrame:
    return raw_claims_frame(RAW_BSNS, PARTNER).with_columns(
        pl.Series("gemeente_code", _gemeenten_of(len(RAW_BSNS)))
    )


def pseudonym(bsn9: str) -> str:
    return hmac.new(KEY.secret, bsn9.encode(), hashlib.sha256).hexdigest()


def expected_pairs(frame: pl.DataFrame) -> set[tuple[str, str, str]]:
    """(pseudonym, gemeente, bsn9) for every accepted row, as the spec defines them."""
    return {
        (pseudonym(normalise_bsn(raw)), gm, normalise_bsn(raw))
        for raw, gm in zip(frame["bsn"], frame["gemeente_code"], strict=True)
        if bsn_rejection_reason(raw) is None
    }


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> tuple[Path, Path]:
    """(folder of the gemeenten's public certificates, folder of their private keys)."""
    root = tmp_path_factory.mktemp("pki")
    create_demo_certificates(root / "hub", root / "gemeente-side", GEMEENTEN)
    return root / "hub" / "gemeenten", root / "gemeente-side"


def write_raw(frame: pl.DataFrame, folder: Path, fmt: str = "csv") -> Path:
    path = folder / "raw" / f"claims.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        return write_raw_csv(frame, path)
    frame.write_parquet(path)
    return path


def run(folder: Path, frame: pl.DataFrame, certs: Path | None, fmt: str = "csv"):
    return pseudonymise_extract(
        write_raw(frame, folder, fmt),
        folder / "out",
        key=KEY,
        partner=PARTNER,
        extract_date=EXTRACT_DATE,
        gemeente_certs=certs,
    )


def read_identities(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".csv":
        return pl.read_csv(path, separator=";", infer_schema=False).to_dicts()
    return pl.read_parquet(path).to_dicts()


def private_key(keys: Path, code: str):
    return serialization.load_pem_private_key((keys / f"{code}.key").read_bytes(), None)


def open_all(out: Path, rows: list[dict[str, str]], keys: Path) -> set[tuple[str, str, str]]:
    """Open every key file with its gemeente's key, then every value: (pseudonym, gm, bsn9)."""
    opened = {}
    for code in {row["gemeente_code"] for row in rows}:
        certificate = load_certificate(keys / f"{code}.crt")
        opened[code] = unwrap_key(
            key_file(out, code).read_bytes(), certificate, private_key(keys, code)
        )
    return {
        (
            row["person_pseudonym"],
            row["gemeente_code"],
            open_identity(
                opened[row["gemeente_code"]],
                row["identity_sealed"],
                associated_data(PARTNER, EXTRACT_DATE, row["gemeente_code"]),
            ),
        )
        for row in rows
    }


def openssl_decrypt(message: Path, keys: Path, code: str) -> subprocess.CompletedProcess:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed: the spec promises stock openssl opens the key files"
    return subprocess.run(
        [
            openssl,
            "cms",
            "-decrypt",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(message),
            "-inkey",
            str(keys / f"{code}.key"),
            "-recip",
            str(keys / f"{code}.crt"),
        ],
        capture_output=True,
        timeout=60,
    )


def test_each_value_opens_to_the_bsn_whose_hmac_is_its_pseudonym(tmp_path, pki):
    certs, keys = pki
    frame = claims_frame()
    result = run(tmp_path, frame, certs)
    out = tmp_path / "out"
    sealed = result.identities
    assert sealed is not None and sealed.data_path == out / "identities.csv"
    assert sealed.data_path.read_text().splitlines()[0] == IDENTITY_HEADER
    rows = read_identities(sealed.data_path)
    expected = expected_pairs(frame)
    # one row per person and gemeente of the accepted rows, nothing for a rejected BSN
    assert len(rows) == len(expected) == len({(r[0], r[1]) for r in expected})
    assert sealed.rows == len(rows) and sealed.gemeenten == len(GEMEENTEN)
    assert sealed.gemeenten_without_certificate == ()
    assert all(pl.Series([r["identity_sealed"] for r in rows]).str.contains(SEALED_PATTERN))
    opened = open_all(out, rows, keys)
    assert opened == expected
    assert all(pseudonym(bsn9) == person for person, _, bsn9 in opened)
    assert not {normalise_bsn(b) for b in INVALID_BSNS if normalise_bsn(b)} & {
        bsn9 for _, _, bsn9 in opened
    }
    # stock OpenSSL opens every key file to the same 32 bytes
    for code in GEMEENTEN:
        done = openssl_decrypt(key_file(out, code), keys, code)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert done.stdout == unwrap_key(
            key_file(out, code).read_bytes(),
            load_certificate(keys / f"{code}.crt"),
            private_key(keys, code),
        )
    # the claims delivery itself is unchanged by sealing
    assert result.rows_written == len(RAW_BSNS) - 4 and result.rows_rejected == 4


def test_the_manifest_describes_the_data_file_and_every_key_file(tmp_path, pki):
    result = run(tmp_path, claims_frame(), pki[0])
    out = tmp_path / "out"
    manifest = json.loads(result.identities.manifest_path.read_text())
    assert manifest == {
        "contract": "identities",
        "contract_version": "1.0.0",
        "partner": PARTNER,
        "extract_date": EXTRACT_DATE.isoformat(),
        "key_id": KEY.key_id,
        "file": "identities.csv",
        "sha256": sha256_file(out / "identities.csv"),
        "row_count": result.identities.rows,
        "identity_keys": {code: sha256_file(key_file(out, code)) for code in GEMEENTEN},
    }
    assert list(manifest["identity_keys"]) == sorted(GEMEENTEN)
    assert sorted(p.name for p in (out / KEYS_FOLDER).iterdir()) == [
        f"{code}.p7m" for code in GEMEENTEN
    ]


def test_another_gemeentes_key_opens_no_key_file(tmp_path, pki):
    certs, keys = pki
    run(tmp_path, claims_frame(), certs)
    out = tmp_path / "out"
    for code in GEMEENTEN:
        for other in GEMEENTEN:
            if other == code:
                continue
            with pytest.raises(SealError):
                unwrap_key(
                    key_file(out, code).read_bytes(),
                    load_certificate(keys / f"{other}.crt"),
                    private_key(keys, other),
                )
    assert openssl_decrypt(key_file(out, "GM0363"), keys, "GM0599").returncode != 0


def test_a_value_does_not_open_under_another_gemeentes_associated_data_or_key(tmp_path, pki):
    certs, keys = pki
    result = run(tmp_path, claims_frame(), certs)
    out = tmp_path / "out"
    row = next(
        r for r in read_identities(result.identities.data_path) if r["gemeente_code"] == "GM0363"
    )
    key_363 = unwrap_key(
        key_file(out, "GM0363").read_bytes(),
        load_certificate(keys / "GM0363.crt"),
        private_key(keys, "GM0363"),
    )
    key_599 = unwrap_key(
        key_file(out, "GM0599").read_bytes(),
        load_certificate(keys / "GM0599.crt"),
        private_key(keys, "GM0599"),
    )
    sealed = row["identity_sealed"]
    open_identity(key_363, sealed, associated_data(PARTNER, EXTRACT_DATE, "GM0363"))  # opens
    with pytest.raises(SealError):
        open_identity(key_363, sealed, associated_data(PARTNER, EXTRACT_DATE, "GM0599"))
    with pytest.raises(SealError):
        open_identity(key_599, sealed, associated_data(PARTNER, EXTRACT_DATE, "GM0599"))
    with pytest.raises(SealError):
        open_identity(key_363, sealed, associated_data("BD", EXTRACT_DATE, "GM0363"))


def test_csv_and_parquet_give_the_same_rows_once_opened(tmp_path, pki):
    certs, keys = pki
    frame = claims_frame()
    from_csv = run(tmp_path / "csv", frame, certs, "csv").identities
    from_parquet = run(tmp_path / "parquet", frame, certs, "parquet").identities
    assert from_parquet.data_path.name == "identities.parquet"
    assert pl.read_parquet(from_parquet.data_path).columns == IDENTITY_HEADER.split(";")
    csv_rows = open_all(tmp_path / "csv" / "out", read_identities(from_csv.data_path), keys)
    parquet_rows = open_all(
        tmp_path / "parquet" / "out", read_identities(from_parquet.data_path), keys
    )
    assert csv_rows == parquet_rows == expected_pairs(frame)


def test_without_certificates_no_identities_and_an_earlier_dataset_is_removed(
    tmp_path, pki, caplog
):
    caplog.set_level(logging.INFO)
    out = tmp_path / "out"
    first = run(tmp_path, claims_frame(), pki[0])
    assert first.identities is not None and (out / KEYS_FOLDER).is_dir()
    again = run(tmp_path, claims_frame(), None)
    assert again.identities is None
    assert sorted(p.name for p in out.iterdir()) == [
        "claims.csv",
        "claims.manifest.json",
        "claims.rejects.csv",
    ]
    assert "removed the identities dataset of an earlier run" in caplog.text


def test_a_gemeente_without_certificate_is_warned_about_and_gets_no_rows(tmp_path, pki, caplog):
    certs, keys = pki
    partial = tmp_path / "certs"
    partial.mkdir()
    for code in ("GM0363", "GM0599"):
        shutil.copy(certs / f"{code}.crt", partial)
    caplog.set_level(logging.INFO)
    frame = claims_frame()
    result = run(tmp_path, frame, partial)
    sealed = result.identities
    rows = read_identities(sealed.data_path)
    assert {r["gemeente_code"] for r in rows} == {"GM0363", "GM0599"}
    assert sealed.gemeenten_without_certificate == ("GM0014",)
    assert not key_file(tmp_path / "out", "GM0014").exists()
    assert open_all(tmp_path / "out", rows, keys) == {
        pair for pair in expected_pairs(frame) if pair[1] != "GM0014"
    }
    # the people of GM0014 are still delivered in claims
    claims = pl.read_csv(result.data_path, separator=";", infer_schema=False)
    assert "GM0014" in claims["gemeente_code"].to_list()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    missing_persons = len({p for p in expected_pairs(frame) if p[1] == "GM0014"})
    assert "1 gemeente " in message and f"({missing_persons} persons)" in message
    assert "GM0014" in message and f"{partial}/<GMxxxx>.crt" in message


def test_a_rerun_leaves_only_this_runs_key_files(tmp_path, pki):
    certs, _ = pki
    frame = claims_frame()
    run(tmp_path, frame, certs)
    without_groningen = frame.filter(pl.col("gemeente_code") != "GM0014")
    result = run(tmp_path, without_groningen, certs, "parquet")
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / KEYS_FOLDER).iterdir()) == ["GM0363.p7m", "GM0599.p7m"]
    assert not (out / "identities.csv").exists()  # the other format's file is gone too
    assert list(json.loads(result.identities.manifest_path.read_text())["identity_keys"]) == [
        "GM0363",
        "GM0599",
    ]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_no_bsn_anywhere_in_the_delivery_or_the_logs(tmp_path, pki, caplog):
    caplog.set_level(logging.DEBUG)
    run(tmp_path, claims_frame(), pki[0])
    run(tmp_path / "parquet", claims_frame(), pki[0], "parquet")
    bsns = {*VALID_BSN9, "123456783"}
    files = [
        p
        for folder in (tmp_path / "out", tmp_path / "parquet" / "out")
        for p in folder.rglob("*")
        if p.is_file()
    ]
    assert any(p.name == "identities.parquet" for p in files)
    for path in files:
        data = path.read_bytes()
        leaked = [b for b in bsns if b.encode() in data]
        assert not leaked, f"{path.name} holds a raw BSN"
    assert not [b for b in bsns if b in caplog.text]


def test_certificate_errors_are_one_line_naming_the_file(tmp_path, pki):
    frame = claims_frame()
    with pytest.raises(PseudonymiseError, match="no such folder of gemeente certificates"):
        run(tmp_path, frame, tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(pki[0], broken)
    (broken / "GM0599.crt").write_text("not a certificate\n")
    with pytest.raises(PseudonymiseError) as raised:
        run(tmp_path, frame, broken)
    assert str(broken / "GM0599.crt") in str(raised.value)
    assert "\n" not in str(raised.value)
    # nothing of the failed run was delivered: no manifest at all
    assert not list((tmp_path / "out").glob("*.manifest.json"))


def test_income_with_certificates_writes_nothing_extra(tmp_path, pki, caplog):
    caplog.set_level(logging.INFO)
    rnd = random.Random(3)
    income = pl.DataFrame(
        {
            "bsn": [make_valid_bsn(rnd) for _ in range(5)],
            "household_type": ["single"] * 5,
            "net_income_cents": [150000] * 5,
            "income_month": ["2026-11-01"] * 5,
        }
    )
    raw = write_raw_csv(income, tmp_path / "raw" / "income.csv")
    result = pseudonymise_extract(
        raw,
        tmp_path / "out",
        key=KEY,
        partner="TSL",
        extract_date=EXTRACT_DATE,
        gemeente_certs=pki[0],
    )
    assert result.identities is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "income.csv",
        "income.manifest.json",
    ]
    assert "sealed identities come from claims extracts" in caplog.text


def test_a_raw_extract_is_never_called_identities(tmp_path):
    raw = write_raw_csv(claims_frame(), tmp_path / "raw" / "identities.csv")
    with pytest.raises(PseudonymiseError, match="written by this tool from a claims extract"):
        pseudonymise_extract(
            raw, tmp_path / "out", key=KEY, partner=PARTNER, extract_date=EXTRACT_DATE
        )


def test_the_cli_prints_one_line_for_the_identities(tmp_path, pki):
    from privacy.keys import write_key_file

    key_path = write_key_file(KEY, tmp_path / "link.key.json")
    raw = write_raw(claims_frame(), tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "pseudonymise",
            "--key",
            str(key_path),
            "--partner",
            PARTNER,
            "--date",
            EXTRACT_DATE.isoformat(),
            "--in",
            str(raw),
            "--out",
            str(tmp_path / "out"),
            "--gemeente-certs",
            str(pki[0]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = len(expected_pairs(claims_frame()))
    assert f"{PARTNER} identities: {rows:,} sealed for 3 gemeenten ->" in done.stdout
    assert not [b for b in VALID_BSN9 if b in done.stdout + done.stderr]
