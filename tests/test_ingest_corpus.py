"""The rejection corpus: each bad delivery is rejected whole for the right rule, its bytes are
kept unchanged in the quarantine, no value leaks into the reason, and the rest of the night loads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipelines.ingest import ingest_date
from tests.conftest import NIGHT_PARTNERS
from tests.delivery_edits import edit_lines, manifest, resign, set_field, write_manifest
from tests.helpers import EXTRACT_DATE

DATE = EXTRACT_DATE.isoformat()
HEX64 = re.compile(r"[0-9a-f]{64}")


def cjib(d: Path) -> Path:
    return d / "CJIB"


def rewrite_manifest(folder: Path, dataset: str = "claims", **changes) -> None:
    document = manifest(folder, dataset)
    document.update(changes)
    write_manifest(folder, document, dataset)


def to_parquet(folder: Path, dtypes: dict | None = None) -> None:
    frame = pl.read_csv(folder / "claims.csv", separator=";", try_parse_dates=True)
    if dtypes:
        frame = frame.with_columns([pl.col(c).cast(t) for c, t in dtypes.items()])
    (folder / "claims.csv").unlink()
    frame.write_parquet(folder / "claims.parquet")
    rewrite_manifest(folder, file="claims.parquet")
    resign(folder)


def move_partner(d: Path, new: str) -> None:
    shutil.move(d / "CJIB", d / new)


# (case id, folder that goes bad, dataset, edit of the date folder, expected rule, example line)
CORPUS = [
    (
        "manifest missing",
        "CJIB",
        "claims",
        lambda d: (cjib(d) / "claims.manifest.json").unlink(),
        "manifest_missing",
        None,
    ),
    (
        "manifest not json",
        "CJIB",
        "claims",
        lambda d: (cjib(d) / "claims.manifest.json").write_text("{not json"),
        "manifest_unreadable",
        None,
    ),
    (
        "manifest lacks row_count",
        "CJIB",
        "claims",
        lambda d: write_manifest(
            cjib(d), {k: v for k, v in manifest(cjib(d)).items() if k != "row_count"}
        ),
        "manifest_unreadable",
        None,
    ),
    (
        "manifest row_count is text",
        "CJIB",
        "claims",
        lambda d: rewrite_manifest(cjib(d), row_count="12"),
        "manifest_unreadable",
        None,
    ),
    (
        "sha256 mismatch",
        "CJIB",
        "claims",
        lambda d: (cjib(d) / "claims.csv").open("a").write("\n"),
        "sha256_mismatch",
        None,
    ),
    (
        "row_count mismatch",
        "CJIB",
        "claims",
        lambda d: rewrite_manifest(cjib(d), row_count=manifest(cjib(d))["row_count"] + 1),
        "row_count_mismatch",
        None,
    ),
    (
        "unknown contract",
        "CJIB",
        "claims",
        lambda d: rewrite_manifest(cjib(d), contract="payments"),
        "unknown_contract",
        None,
    ),
    (
        "unknown contract version",
        "CJIB",
        "claims",
        lambda d: rewrite_manifest(cjib(d), contract_version="9.9.9"),
        "unknown_contract_version",
        None,
    ),
    (
        "unknown partner folder",
        "NVWA",
        "claims",
        lambda d: (move_partner(d, "NVWA"), rewrite_manifest(d / "NVWA", partner="NVWA")),
        "unknown_partner",
        None,
    ),
    (
        "manifest partner disagrees with folder",
        "CJIB",
        "claims",
        lambda d: rewrite_manifest(cjib(d), partner="CAK"),
        "partner_mismatch",
        None,
    ),
    (
        "manifest date disagrees with folder",
        "CJIB",
        "claims",
        lambda d: rewrite_manifest(cjib(d), extract_date="2026-11-21"),
        "date_mismatch",
        None,
    ),
    (
        "data file missing",
        "CJIB",
        "claims",
        lambda d: (cjib(d) / "claims.csv").unlink(),
        "data_file_missing",
        None,
    ),
    (
        "manifest points outside its folder",
        "CJIB",
        "claims",
        lambda d: rewrite_manifest(cjib(d), file="../BD/claims.csv"),
        "data_file_missing",
        None,
    ),
    (
        "truncated file, manifest re-signed",
        "CJIB",
        "claims",
        lambda d: (
            (cjib(d) / "claims.csv").write_bytes((cjib(d) / "claims.csv").read_bytes()[:-40]),
            resign(cjib(d)),
        ),
        "unparseable",
        None,
    ),
    (
        "truncated file in transit",
        "CJIB",
        "claims",
        lambda d: (cjib(d) / "claims.csv").write_bytes((cjib(d) / "claims.csv").read_bytes()[:-40]),
        "sha256_mismatch",
        None,
    ),
    (
        "non-UTF-8 bytes",
        "CJIB",
        "claims",
        lambda d: (
            (cjib(d) / "claims.csv").write_bytes(
                (cjib(d) / "claims.csv").read_bytes().replace(b";CJIB-", b";CJIB\xff-", 1)
            ),
            resign(cjib(d)),
        ),
        "unparseable",
        2,
    ),
    (
        "comma instead of semicolon",
        "CJIB",
        "claims",
        lambda d: edit_lines(cjib(d), lambda ls: [x.replace(";", ",") for x in ls]),
        "wrong_separator",
        1,
    ),
    (
        "empty file",
        "CJIB",
        "claims",
        lambda d: ((cjib(d) / "claims.csv").write_bytes(b""), resign(cjib(d), rows=0)),
        "unparseable",
        None,
    ),
    (
        "row with too few fields",
        "CJIB",
        "claims",
        lambda d: edit_lines(cjib(d), lambda ls: [*ls[:4], ls[4].rsplit(";", 2)[0], *ls[5:]]),
        "unparseable",
        5,
    ),
    (
        "row with too many fields",
        "CJIB",
        "claims",
        lambda d: edit_lines(cjib(d), lambda ls: [*ls[:3], ls[3] + ";extra", *ls[4:]]),
        "unparseable",
        4,
    ),
    (
        "unterminated quote",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 6, "claim_ref", '"CJIB-open'),
        "unparseable",
        None,
    ),
    (
        "decimal amounts",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 2, "outstanding_cents", "123.45"),
        "outstanding_cents.format",
        3,
    ),
    (
        "thousands separator in amount",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 5, "imposed_cents", "1.234"),
        "imposed_cents.format",
        6,
    ),
    (
        "Dutch date format",
        "CJIB",
        "claims",
        lambda d: edit_lines(
            cjib(d),
            lambda ls: (
                [ls[0]] + [re.sub(r";(\d{4})-(\d{2})-(\d{2});", r";\3-\2-\1;", x) for x in ls[1:]]
            ),
        ),
        "arrears_since.format",
        None,
    ),
    (
        "impossible date",
        "CJIB",
        "claims",
        lambda d: edit_lines(
            cjib(d),
            lambda ls: (
                [ls[0]]
                + [re.sub(r";\d{4}-\d{2}-\d{2};", ";2026-02-30;", x, count=1) for x in ls[1:]]
            ),
        ),
        "arrears_since.format",
        None,
    ),
    (
        "unknown stage",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 4, "stage", "collection_agency"),
        "stage.stage_known",
        5,
    ),
    (
        "boolean spelled yes",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 7, "debt_assistance", "yes"),
        "debt_assistance.format",
        8,
    ),
    (
        "boolean in capitals",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 2, "debt_assistance", "TRUE"),
        "debt_assistance.format",
        3,
    ),
    (
        "gemeente without GM",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 3, "gemeente_code", "0363"),
        "gemeente_code.pattern",
        4,
    ),
    (
        "gemeente that does not exist",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 3, "gemeente_code", "GM9999"),
        "gemeente_code.gemeente_known",
        4,
    ),
    (
        "claim type of another partner",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 9, "claim_type", "INKOMSTENBELASTING"),
        "claim_type.claim_type_of_partner",
        10,
    ),
    (
        "duplicate claim_ref",
        "CJIB",
        "claims",
        lambda d: edit_lines(cjib(d), lambda ls: [*ls, ls[2]]),
        "claim_ref.unique",
        3,
    ),
    (
        "claim_ref with a space",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 2, "claim_ref", "CJIB 1"),
        "claim_ref.pattern",
        3,
    ),
    (
        "stage left empty",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 5, "stage", ""),
        "stage.required",
        6,
    ),
    (
        "uppercase pseudonym",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 2, "person_pseudonym", "A" * 64),
        "person_pseudonym.pattern",
        3,
    ),
    (
        "raw BSN instead of pseudonym",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 4, "person_pseudonym", "123456782"),
        "person_pseudonym.pattern",
        5,
    ),
    (
        "raw BSN in claim_ref",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 3, "claim_ref", "1234.56.782"),
        "claim_ref.raw_bsn",
        4,
    ),
    (
        "outstanding above 1,000,000 euro",
        "CJIB",
        "claims",
        lambda d: (
            set_field(cjib(d), 2, "outstanding_cents", "100000001"),
            set_field(cjib(d), 2, "imposed_cents", "100000001"),
            set_field(cjib(d), 2, "arrears_cents", "0"),
            set_field(cjib(d), 2, "arrears_since", ""),
        ),
        "outstanding_cents.maximum",
        3,
    ),
    (
        "imposed below outstanding",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 2, "imposed_cents", "1"),
        "imposed_cents.imposed_covers_outstanding",
        3,
    ),
    (
        "arrears above outstanding",
        "CJIB",
        "claims",
        lambda d: set_field(cjib(d), 2, "arrears_cents", "999999999"),
        "arrears_cents.arrears_within_outstanding",
        3,
    ),
    (
        "arrears date without arrears",
        "CJIB",
        "claims",
        lambda d: edit_lines(
            cjib(d),
            lambda ls: (
                [ls[0], re.sub(r";\d+;(\d{4}-\d{2}-\d{2});", r";0;\1;", ls[1], count=1), *ls[2:]]
            ),
        ),
        "arrears_since.arrears_since_iff_arrears",
        2,
    ),
    (
        "arrears date after the extract date",
        "CJIB",
        "claims",
        lambda d: edit_lines(
            cjib(d),
            lambda ls: (
                [ls[0]]
                + [re.sub(r";\d{4}-\d{2}-\d{2};", ";2027-01-01;", x, count=1) for x in ls[1:]]
            ),
        ),
        "arrears_since.arrears_since_in_range",
        None,
    ),
    (
        "missing column",
        "CJIB",
        "claims",
        lambda d: edit_lines(cjib(d), lambda ls: [x.rsplit(";", 1)[0] for x in ls]),
        "missing_column",
        None,
    ),
    (
        "extra column",
        "CJIB",
        "claims",
        lambda d: edit_lines(
            cjib(d), lambda ls: [ls[0] + ";name"] + [x + ";Jansen" for x in ls[1:]]
        ),
        "unexpected_column",
        None,
    ),
    (
        "Parquet with amounts as floats",
        "CJIB",
        "claims",
        lambda d: to_parquet(cjib(d), {"outstanding_cents": pl.Float64}),
        "wrong_type",
        None,
    ),
    (
        "Parquet with dates as text",
        "CJIB",
        "claims",
        lambda d: to_parquet(cjib(d), {"arrears_since": pl.String}),
        "wrong_type",
        None,
    ),
    (
        "text file named .parquet",
        "CJIB",
        "claims",
        lambda d: (
            (cjib(d) / "claims.csv").rename(cjib(d) / "claims.parquet"),
            rewrite_manifest(cjib(d), file="claims.parquet"),
        ),
        "unparseable",
        None,
    ),
    (
        "duplicate income row",
        "TSL",
        "income",
        lambda d: edit_lines(d / "TSL", lambda ls: [*ls, ls[1]], "income"),
        "person_pseudonym.unique",
        2,
    ),
    (
        "income month not a first day",
        "TSL",
        "income",
        lambda d: set_field(d / "TSL", 1, "income_month", "2026-10-15", "income"),
        "income_month.income_month_first_day",
        2,
    ),
    (
        "unknown household type",
        "TSL",
        "income",
        lambda d: set_field(d / "TSL", 2, "household_type", "student", "income"),
        "household_type.household_type_known",
        3,
    ),
    (
        "income delivered by CJIB",
        "CJIB",
        "income",
        lambda d: (
            shutil.copy(d / "TSL" / "income.csv", cjib(d) / "income.csv"),
            write_manifest(cjib(d), {**manifest(d / "TSL", "income"), "partner": "CJIB"}, "income"),
        ),
        "partner_not_allowed",
        None,
    ),
]


def snapshot(folder: Path, dataset: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob(f"{dataset}.*") if p.is_file()}


@pytest.mark.parametrize(
    ("case", "folder", "dataset", "edit", "rule", "line"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_bad_delivery_is_rejected_whole_and_kept(night, case, folder, dataset, edit, rule, line):
    date_dir = night / "landing" / DATE
    edit(date_dir)
    before = snapshot(date_dir / folder, dataset)

    outcomes = {(o.partner, o.dataset): o for o in ingest_date(EXTRACT_DATE, data_dir=night)}

    bad = outcomes[(folder, dataset)]
    assert bad.rejected, bad
    assert bad.rule == rule, bad.violations
    if line is not None:
        assert line in bad.violations[0].example_lines
    # The original bytes are in the quarantine, unchanged; nothing of the dataset is staged.
    assert snapshot(bad.quarantine_path, dataset) == before
    assert not (date_dir / folder / f"{dataset}.manifest.json").exists()
    assert not (night / "staging" / DATE / folder / f"{dataset}.parquet").exists()
    reason = json.loads((bad.quarantine_path / "reason.json").read_text())
    assert reason["rule"] == rule and reason["dataset"] == dataset
    assert len(reason["example_lines"]) <= 10
    # Never a value: no pseudonym, no BSN, not the offending text.
    for text in [json.dumps(reason)] + [
        p.read_text() for p in bad.quarantine_path.glob("validation.json")
    ]:
        assert not HEX64.search(text)
        assert "123456782" not in text and "1234.56.782" not in text and "Jansen" not in text
    # Every other dataset of the night still loads.
    others = [key for key in NIGHT_PARTNERS if key != (folder, dataset) and key in outcomes]
    assert others and all(outcomes[key].status == "accepted" for key in others), outcomes


def test_the_corpus_covers_enough_distinct_rules():
    assert len(CORPUS) >= 30
    assert len({c[4] for c in CORPUS}) >= 30


def test_the_same_bytes_for_a_later_date_are_a_quiet_day_not_a_replay(night):
    """interfaces.md section 3, version 2: an unchanged extract is accepted and noted."""
    ingest_date(EXTRACT_DATE, data_dir=night)
    later = EXTRACT_DATE + dt.timedelta(days=1)
    shutil.copytree(
        night / "landing" / DATE / "CJIB", night / "landing" / later.isoformat() / "CJIB"
    )
    rewrite_manifest(night / "landing" / later.isoformat() / "CJIB", extract_date=later.isoformat())
    [outcome] = ingest_date(later, data_dir=night)
    assert outcome.status == "accepted" and outcome.unchanged_since == DATE
    assert f"(unchanged_since {DATE}: the same bytes)" in outcome.summary()
    assert (night / "landing" / later.isoformat() / "CJIB" / "claims.csv").exists()
    assert not (night / "quarantine").exists()
