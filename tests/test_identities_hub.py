"""Sealed identities at the hub (interfaces.md section 3, rules.md "Signal file, version 2"):
format checks at ingest, the choice of one sealed value per signal, the copied key files, the
signed manifest, and that the hub never holds a readable BSN nor puts identities in the
analysts' database. Real cryptography and a real `openssl` throughout."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from pipelines.run import run_night
from privacy.cms import create_demo_certificates, load_certificate, load_private_key
from privacy.hashing import hub_person_id
from privacy.keys import load_key_file
from privacy.sealing import SealError, associated_data, open_identity, unwrap_key
from tests.helpers import (
    deliver_empty_extracts,
    hub_key_file,
    pseudonym_of,
    write_claims_delivery,
    write_identities_delivery,
)

D0 = dt.date(2026, 11, 20)
D = dt.date(2026, 11, 22)
GEMEENTEN = ["GM0363", "GM0599"]
BSN = {  # valid BSNs (elfproef), one per hand-worked person
    "A": "111222333",
    "B": "123456782",
    "C": "100000009",
    "E": "010000008",
    "F": "999999990",
}


def claim(person: str, cents: int, since: str = "2026-01-15", **extra) -> dict:
    return {
        "person": person,
        "imposed_cents": cents,
        "outstanding_cents": cents,
        "arrears_cents": cents,
        "arrears_since": since,
        **extra,
    }


def identity(person: str, gemeente: str = "GM0363", bsn: str | None = None) -> dict:
    return {"person": person, "bsn": bsn or BSN[person], "gemeente_code": gemeente}


@pytest.fixture()
def pki(tmp_path):
    certs, gemeente_keys = tmp_path / "certs", tmp_path / "gemeente"
    create_demo_certificates(certs, gemeente_keys, GEMEENTEN)
    return certs, gemeente_keys


def night_with_identities(tmp_path: Path, pki) -> tuple[Path, Path]:
    """A night where A, B, C, E are signalled (BD and CJIB qualify for each) and F is not.

    - A (GM0363): identities from CJIB and BD: BD's wins (first partner code).
    - B (GM0599): identities from CJIB on D0 and on D (both accepted): D's wins (latest).
    - C (GM0363): an identity only for GM0599 (not where C is signalled): none.
    - E (GM0363): no identity at all: still signalled, empty columns.
    - F: not signalled; its identity goes nowhere.
    """
    certs, _ = pki
    data_dir = tmp_path / "data"
    landing = data_dir / "landing"
    key = hub_key_file(tmp_path)
    for date, bd_cents in ((D0, 100), (D, 60_000)):  # on D0 BD does not qualify: no signals
        write_claims_delivery(
            landing,
            date,
            "BD",
            [
                claim("A", bd_cents),
                claim("B", bd_cents, gemeente_code="GM0599"),
                claim("C", bd_cents),
                claim("E", bd_cents),
            ],
        )
        write_claims_delivery(
            landing,
            date,
            "CJIB",
            [
                claim("A", 10_000),
                claim("B", 10_000, gemeente_code="GM0599"),
                claim("C", 10_000),
                claim("E", 10_000),
                claim("F", 10_000),
            ],
        )
        deliver_empty_extracts(landing, date)
    write_identities_delivery(
        landing, D0, "CJIB", [identity("B", "GM0599", bsn="000000012")], certs / "gemeenten"
    )
    write_identities_delivery(
        landing,
        D,
        "CJIB",
        [identity("A"), identity("B", "GM0599"), identity("C", "GM0599"), identity("F")],
        certs / "gemeenten",
    )
    write_identities_delivery(landing, D, "BD", [identity("A")], certs / "gemeenten")
    assert run_night(D0, data_dir=data_dir, hub_key_path=key, certs=certs).signals.signals == 0
    run_night(D, data_dir=data_dir, hub_key_path=key, certs=certs)
    return data_dir, key


def signal_rows(data_dir: Path, gemeente: str) -> list[dict]:
    path = data_dir / "outbox" / D.isoformat() / gemeente / "signals.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def person_of(data_dir: Path, key: Path, row: dict) -> str:
    """The hand-worked name of a signal's person (through the published signals table)."""
    secret = load_key_file(key, "hub").secret
    names = {hub_person_id(secret, pseudonym_of(n)): n for n in BSN}
    with duckdb.connect(str(data_dir / "warehouse" / "analytics.duckdb"), read_only=True) as con:
        (person,) = con.execute(
            "select person_id from signals where signal_id = ?", [row["signal_id"]]
        ).fetchone()
    return names[person]


def open_row(folder: Path, gemeente: str, row: dict, pki) -> str:
    """What the gemeente reads: its key file opened with its own key, then the value."""
    _, gemeente_keys = pki
    partner, _, extract_date = row["identity_key"].partition("-")
    key = unwrap_key(
        (folder / "identity-keys" / f"{row['identity_key']}.p7m").read_bytes(),
        load_certificate(gemeente_keys / f"{gemeente}.crt"),
        load_private_key(gemeente_keys / f"{gemeente}.key"),
    )
    return open_identity(
        key, row["identity_sealed"], associated_data(partner, extract_date, gemeente)
    )


def test_each_signal_gets_the_sealed_identity_the_rule_chooses(tmp_path, pki):
    data_dir, key = night_with_identities(tmp_path, pki)
    outbox = data_dir / "outbox" / D.isoformat()
    seen = {}
    for gemeente in GEMEENTEN:
        rows = signal_rows(data_dir, gemeente)
        assert list(rows[0])[-3:] == ["crisis", "identity_key", "identity_sealed"]
        for row in rows:
            name = person_of(data_dir, key, row)
            seen[name] = row["identity_key"]
            if row["identity_key"]:
                assert open_row(outbox / gemeente, gemeente, row, pki) == BSN[name]
            else:
                assert row["identity_sealed"] == ""
    assert seen == {"A": "BD-2026-11-22", "B": "CJIB-2026-11-22", "C": "", "E": ""}
    # exactly the key files the rows refer to, copied unchanged from the partners' deliveries
    assert sorted(p.name for p in (outbox / "GM0363" / "identity-keys").iterdir()) == [
        "BD-2026-11-22.p7m"
    ]
    assert sorted(p.name for p in (outbox / "GM0599" / "identity-keys").iterdir()) == [
        "CJIB-2026-11-22.p7m"
    ]
    assert (outbox / "GM0599" / "identity-keys" / "CJIB-2026-11-22.p7m").read_bytes() == (
        data_dir / "landing" / D.isoformat() / "CJIB" / "identity-keys" / "GM0599.p7m"
    ).read_bytes()
    delivery = json.loads((outbox / "delivery.json").read_text())
    assert delivery["identities"] == {"GM0363": [3, 1], "GM0599": [1, 1]}
    report = (data_dir / "reports" / D.isoformat() / "index.html").read_text()
    assert "2 of 4 signals\ncarry a sealed identity" in report


def test_a_value_opens_only_for_its_gemeente_partner_and_date(tmp_path, pki):
    data_dir, _ = night_with_identities(tmp_path, pki)
    outbox = data_dir / "outbox" / D.isoformat()
    _, gemeente_keys = pki
    (a_row,) = [r for r in signal_rows(data_dir, "GM0363") if r["identity_key"]]
    (b_row,) = signal_rows(data_dir, "GM0599")
    # another gemeente's key does not open the key file
    with pytest.raises(SealError):
        unwrap_key(
            (outbox / "GM0363" / "identity-keys" / "BD-2026-11-22.p7m").read_bytes(),
            load_certificate(gemeente_keys / "GM0599.crt"),
            load_private_key(gemeente_keys / "GM0599.key"),
        )
    # B's value moved into GM0363's file, under GM0363's key file: does not open
    moved = {**a_row, "identity_sealed": b_row["identity_sealed"]}
    with pytest.raises(SealError):
        open_row(outbox / "GM0363", "GM0363", moved, pki)
    # a value relabelled to another partner's key (same gemeente): does not open
    bd_key = unwrap_key(
        (outbox / "GM0363" / "identity-keys" / "BD-2026-11-22.p7m").read_bytes(),
        load_certificate(gemeente_keys / "GM0363.crt"),
        load_private_key(gemeente_keys / "GM0363.key"),
    )
    with pytest.raises(SealError):
        open_identity(bd_key, a_row["identity_sealed"], associated_data("CJIB", D, "GM0363"))
    # one flipped bit: does not open
    raw = bytearray(a_row["identity_sealed"].encode())
    raw[20] = ord("A") if raw[20] != ord("A") else ord("B")
    with pytest.raises(SealError):
        open_row(outbox / "GM0363", "GM0363", {**a_row, "identity_sealed": raw.decode()}, pki)


def test_the_manifest_is_version_2_and_signed_by_the_hub(tmp_path, pki):
    data_dir, _ = night_with_identities(tmp_path, pki)
    certs, _ = pki
    folder = data_dir / "outbox" / D.isoformat() / "GM0363"
    manifest = json.loads((folder / "signals.manifest.json").read_text())
    assert manifest["format_version"] == 2
    assert manifest["sha256"] == hashlib.sha256((folder / "signals.csv").read_bytes()).hexdigest()
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed (installed by .ci/run)"
    checked = tmp_path / "manifest.checked"
    result = subprocess.run(
        [
            openssl,
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(folder / "signals.manifest.json.p7s"),
            "-CAfile",
            str(certs / "ca.crt"),
            "-out",
            str(checked),
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert checked.read_bytes() == (folder / "signals.manifest.json").read_bytes()


def all_bytes_under(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]


def test_no_bsn_anywhere_at_the_hub_and_no_identities_for_analysts(tmp_path, pki, caplog):
    for logger in ("pipelines", "privacy"):
        caplog.set_level("DEBUG", logger=logger)
    data_dir, _ = night_with_identities(tmp_path, pki)
    for path, content in all_bytes_under(data_dir):
        for bsn in [*BSN.values(), "000000012"]:
            assert bsn.encode() not in content, f"{bsn} found in {path}"
    for bsn in [*BSN.values(), "000000012"]:
        assert bsn not in caplog.text
    # sealed values stay out of the analysts' database and the history it reads
    sealed = [r["identity_sealed"] for g in GEMEENTEN for r in signal_rows(data_dir, g)]
    sealed = [s for s in sealed if s]
    for path, content in all_bytes_under(data_dir / "warehouse"):
        assert not any(s.encode() in content for s in sealed), path
    with duckdb.connect(str(data_dir / "warehouse" / "analytics.duckdb"), read_only=True) as con:
        names = [r[0] for r in con.execute("select view_name from duckdb_views()").fetchall()]
        names += [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
    assert not [n for n in names if "identit" in n]


def test_bad_identities_are_rejected_and_the_night_goes_on(tmp_path, pki):
    certs, _ = pki
    data_dir = tmp_path / "data"
    landing = data_dir / "landing"
    key = hub_key_file(tmp_path)
    write_claims_delivery(landing, D, "BD", [claim("A", 60_000)])
    write_claims_delivery(landing, D, "CJIB", [claim("A", 10_000)])
    write_claims_delivery(landing, D, "DUO", [claim("A", 30_000)])
    deliver_empty_extracts(landing, D)
    gemeenten = certs / "gemeenten"
    # BD: a key file changed after the manifest was written
    bd = write_identities_delivery(landing, D, "BD", [identity("A")], gemeenten)
    (bd / "identity-keys" / "GM0363.p7m").write_bytes(b"not the key file")
    # CJIB: a row for a gemeente whose key file is not in the delivery
    cjib = write_identities_delivery(landing, D, "CJIB", [identity("A")], gemeenten)
    lines = (cjib / "identities.csv").read_text().splitlines()
    lines.append(lines[1].replace("GM0363", "GM0599"))
    rewrite(cjib, lines)
    # DUO: a value that is not base64 of the right length, and a repeated pair
    duo = write_identities_delivery(landing, D, "DUO", [identity("A")], gemeenten)
    lines = (duo / "identities.csv").read_text().splitlines()
    lines += [lines[1], lines[1].rsplit(";", 1)[0] + ";bm90IGEgc2VhbGVkIHZhbHVl"]
    rewrite(duo, lines)
    summary = run_night(D, data_dir=data_dir, hub_key_path=key, certs=certs)
    rejected = {o["partner"]: o for o in summary.rejected}
    assert sorted(rejected) == ["BD", "CJIB", "DUO"]
    assert {o["dataset"] for o in rejected.values()} == {"identities"}
    reasons = {}
    for partner in rejected:
        (folder,) = (data_dir / "quarantine" / D.isoformat() / partner).iterdir()
        reasons[partner] = json.loads((folder / "reason.json").read_text())
        # quarantined whole, key files with them; nothing left in the landing zone
        assert (folder / "identity-keys" / "GM0363.p7m").is_file()
        assert not (landing / D.isoformat() / partner / "identity-keys").exists()
    assert reasons["BD"]["rule"] == "identity_key_mismatch"
    assert [v["rule"] for v in reasons["CJIB"]["violations"]] == [
        "gemeente_code.gemeente_has_key_file"
    ]
    assert {v["rule"] for v in reasons["DUO"]["violations"]} == {
        "identity_sealed.pattern",
        "person_pseudonym.person_gemeente_unique",
    }
    assert summary.exit_code == 3  # published, with rejections listed
    (row,) = signal_rows(data_dir, "GM0363")
    assert row["identity_key"] == "" and row["partners"] == "BD|CJIB|DUO"


def rewrite(folder: Path, lines: list[str]) -> None:
    """Rewrite an identities file and its manifest's sha256 and row count (an honest manifest
    of a dishonest file: the contract, not the checksum, must catch it)."""
    data = folder / "identities.csv"
    data.write_text("\n".join(lines) + "\n")
    manifest = json.loads((folder / "identities.manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
    manifest["row_count"] = len(lines) - 1
    (folder / "identities.manifest.json").write_text(json.dumps(manifest))


def raw_claims(partner: str, rows: list[tuple[str, str, int]], date: dt.date):
    """A raw extract (with BSNs) as a partner holds it: (bsn, gemeente, cents) per claim."""
    import polars as pl

    from tests.helpers import FIRST_CLAIM_TYPE

    return pl.DataFrame(
        {
            "bsn": [bsn for bsn, _, _ in rows],
            "claim_ref": [f"{partner}-{i}" for i in range(len(rows))],
            "claim_type": [FIRST_CLAIM_TYPE[partner]] * len(rows),
            "imposed_cents": [c for _, _, c in rows],
            "outstanding_cents": [c for _, _, c in rows],
            "arrears_cents": [c for _, _, c in rows],
            "arrears_since": [date - dt.timedelta(days=200)] * len(rows),
            "stage": ["final_notice"] * len(rows),
            "debt_assistance": [False] * len(rows),
            "gemeente_code": [g for _, g, _ in rows],
        }
    )


def test_round_trip_partner_tool_to_hub_to_gemeente(tmp_path, pki):
    """BSNs in, through the partner tool (BD from Parquet, CJIB from CSV, both sealing; DUO
    without certificates), the hub and `open-signals`: each gemeente reads exactly the BSNs
    of the persons signalled to it, and a person known only to partners that seal nothing is
    signalled without one."""
    import random

    from pipelines.gemeente import open_signal_file
    from pipelines.pseudonymise import pseudonymise_extract
    from tests.helpers import linkage_key, make_valid_bsn, write_raw_csv

    certs, gemeente_keys = pki
    rnd = random.Random(15)
    bsn = {name: make_valid_bsn(rnd) for name in ("p1", "p2", "p3", "p4", "p5", "p6", "p7")}
    where = {"p1": "GM0363", "p2": "GM0363", "p3": "GM0599", "p4": "GM0599", "p5": "GM0363"}
    where |= {"p6": "GM0363", "p7": "GM0363"}
    bd = [(bsn[p], where[p], 60_000) for p in ("p1", "p2", "p3", "p4")]
    cjib = [(bsn[p], where[p], 10_000) for p in ("p1", "p2", "p3", "p4", "p6", "p7")]
    duo = [(bsn["p7"], where["p7"], 30_000), (bsn["p5"], where["p5"], 30_000)]
    svb = [(bsn["p5"], where["p5"], 10_000)]
    data_dir = tmp_path / "data"
    landing = data_dir / "landing" / D.isoformat()
    key, _ = linkage_key(tmp_path)
    raw = tmp_path / "partner-side"
    raw.mkdir()
    raw_claims("BD", bd, D).write_parquet(raw / "claims.parquet")
    pseudonymise_extract(
        raw / "claims.parquet",
        landing / "BD",
        key=key,
        partner="BD",
        extract_date=D,
        gemeente_certs=certs / "gemeenten",
    )
    for partner, rows, sealing in (("CJIB", cjib, True), ("DUO", duo, False), ("SVB", svb, False)):
        path = write_raw_csv(raw_claims(partner, rows, D), raw / partner / "claims.csv")
        pseudonymise_extract(
            path,
            landing / partner,
            key=key,
            partner=partner,
            extract_date=D,
            gemeente_certs=certs / "gemeenten" if sealing else None,
        )
    assert (landing / "BD" / "identities.parquet").is_file()
    assert not (landing / "DUO" / "identities.manifest.json").exists()
    deliver_empty_extracts(data_dir / "landing", D)
    summary = run_night(D, data_dir=data_dir, hub_key_path=hub_key_file(tmp_path), certs=certs)
    assert summary.exit_code == 0, summary.rejected
    opened = {}
    for gemeente in GEMEENTEN:
        message = data_dir / "outbox" / D.isoformat() / gemeente / "signals.csv.p7m"
        target = tmp_path / "opened" / f"{gemeente}.csv"
        result = open_signal_file(
            message,
            key=gemeente_keys / f"{gemeente}.key",
            cert=gemeente_keys / f"{gemeente}.crt",
            ca=gemeente_keys / "ca.crt",
            out=target,
        )
        with target.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
        assert "identity_sealed" not in rows[0] and list(rows[0])[-1] == "bsn"
        assert result.with_identity == sum(1 for r in rows if r["bsn"])
        opened[gemeente] = sorted(r["bsn"] for r in rows)
    # GM0363: p1, p2 (BD + CJIB, both sealed), p7 (CJIB + DUO: CJIB sealed it) and p5 (DUO +
    # SVB, neither sealed: signalled without a BSN); p6 (CJIB alone) is not signalled
    assert opened == {
        "GM0363": sorted(["", bsn["p1"], bsn["p2"], bsn["p7"]]),
        "GM0599": sorted([bsn["p3"], bsn["p4"]]),
    }


def test_identities_delivered_again_unchanged_keep_the_date_they_were_sealed_on(tmp_path, pki):
    """A quiet partner delivers yesterday's identities again (same bytes, the manifest of the
    new date): accepted as unchanged, and the signal names the date the values were sealed on,
    which is the date that opens them."""
    certs, _ = pki
    data_dir = tmp_path / "data"
    landing = data_dir / "landing"
    key = hub_key_file(tmp_path)
    for date, bd_cents in ((D0, 100), (D, 60_000)):
        write_claims_delivery(landing, date, "BD", [claim("A", bd_cents)])
        write_claims_delivery(landing, date, "CJIB", [claim("A", 10_000)])
        deliver_empty_extracts(landing, date)
    sealed = write_identities_delivery(landing, D0, "CJIB", [identity("A")], certs / "gemeenten")
    again = landing / D.isoformat() / "CJIB"
    shutil.copytree(sealed / "identity-keys", again / "identity-keys")
    shutil.copyfile(sealed / "identities.csv", again / "identities.csv")
    manifest = json.loads((sealed / "identities.manifest.json").read_text())
    manifest["extract_date"] = D.isoformat()
    (again / "identities.manifest.json").write_text(json.dumps(manifest))
    assert run_night(D0, data_dir=data_dir, hub_key_path=key, certs=certs).signals.signals == 0
    summary = run_night(D, data_dir=data_dir, hub_key_path=key, certs=certs)
    (outcome,) = [o for o in summary.outcomes if o["dataset"] == "identities"]
    assert outcome["unchanged_since"] == D0.isoformat()
    (row,) = signal_rows(data_dir, "GM0363")
    assert row["identity_key"] == f"CJIB-{D0.isoformat()}"
    outbox = data_dir / "outbox" / D.isoformat() / "GM0363"
    assert open_row(outbox, "GM0363", row, pki) == BSN["A"]


def test_identities_not_delivered_tonight_are_carried_forward_and_listed_as_stale(tmp_path, pki):
    """CJIB sealed A's identity on D0 and delivers none on D (its claims are fresh): D's
    signal still carries the D0 value, and the night lists CJIB/identities as stale (interfaces.md
    section 3: "when delivered they are carried forward like the rest"), exit 3. On a date past
    the staleness limit the old value is no longer used, and identities are never "missing"."""
    certs, _ = pki
    data_dir = tmp_path / "data"
    landing = data_dir / "landing"
    key = hub_key_file(tmp_path)
    late = D0 + dt.timedelta(days=8)
    for date, bd_cents in ((D0, 100), (D, 60_000), (late, 60_000)):
        write_claims_delivery(landing, date, "BD", [claim("A", bd_cents)])
        write_claims_delivery(landing, date, "CJIB", [claim("A", 10_000)])
        deliver_empty_extracts(landing, date)
    write_identities_delivery(landing, D0, "CJIB", [identity("A")], certs / "gemeenten")
    assert run_night(D0, data_dir=data_dir, hub_key_path=key, certs=certs).exit_code == 0

    night = run_night(D, data_dir=data_dir, hub_key_path=key, certs=certs)
    assert [c.describe() for c in night.selection.stale] == [f"CJIB/identities {D0}"]
    assert night.exit_code == 3
    (row,) = signal_rows(data_dir, "GM0363")
    assert row["identity_key"] == f"CJIB-{D0}"
    assert (
        open_row(data_dir / "outbox" / D.isoformat() / "GM0363", "GM0363", row, pki) == (BSN["A"])
    )
    with duckdb.connect(str(data_dir / "warehouse" / "analytics.duckdb"), read_only=True) as con:
        assert con.execute(
            "select datasets_stale from runs where run_date = ?", [D]
        ).fetchone() == ([f"CJIB/identities {D0}"],)

    # eight days after D0: beyond the limit, so not used; and never "missing"
    night = run_night(late, data_dir=data_dir, hub_key_path=key, certs=certs)
    assert night.selection.files("identities") == []
    assert night.selection.stale == [] and night.selection.left_out == []
    assert night.exit_code == 0


def test_a_later_date_derived_again_keeps_the_identities_its_files_used(tmp_path, pki):
    """CJIB delivers on D0 only; D0+1 and D0+2 carry it forward, and D0+2's signal goes out
    with CJIB's D0 value. CJIB's D0+1 delivery then arrives late: D0+1 is run again and D0+2
    derived again (its link now carries D0+1's claims), but D0+2's signal files are kept, so its
    record still names the identities they used. A partner's newer identities replace its older
    ones whole, as any carried-forward dataset."""
    certs, _ = pki
    data_dir = tmp_path / "data"
    landing = data_dir / "landing"
    key = hub_key_file(tmp_path)
    d1, d2 = D0 + dt.timedelta(days=1), D0 + dt.timedelta(days=2)
    for date, bd_cents in ((D0, 100), (d1, 100), (d2, 60_000)):
        write_claims_delivery(landing, date, "BD", [claim("A", bd_cents)])
    write_claims_delivery(landing, D0, "CJIB", [claim("A", 10_000)])
    write_identities_delivery(landing, D0, "CJIB", [identity("A")], certs / "gemeenten")
    for date in (D0, d1, d2):
        deliver_empty_extracts(landing, date)
        if date != D0:
            shutil.rmtree(landing / date.isoformat() / "CJIB")  # CJIB misses these nights
    for date in (D0, d1, d2):
        run_night(date, data_dir=data_dir, hub_key_path=key, certs=certs)

    def stale_of(date: dt.date) -> list[str]:
        with duckdb.connect(
            str(data_dir / "warehouse" / "analytics.duckdb"), read_only=True
        ) as con:
            return con.execute(
                "select datasets_stale from runs where run_date = ?", [date]
            ).fetchone()[0]

    def sent_keys(date: dt.date) -> list[str]:
        path = data_dir / "outbox" / date.isoformat() / "GM0363" / "signals.csv"
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [r["identity_key"] for r in csv.DictReader(handle, delimiter=";")]

    assert sent_keys(d2) == [f"CJIB-{D0}"]
    assert stale_of(d2) == [f"CJIB/claims {D0}", f"CJIB/identities {D0}"]

    write_claims_delivery(landing, d1, "CJIB", [claim("A", 10_000)])
    write_identities_delivery(landing, d1, "CJIB", [identity("F")], certs / "gemeenten")
    night = run_night(d1, data_dir=data_dir, hub_key_path=key, certs=certs)
    assert night.rederived == [d2]
    assert sent_keys(d2) == [f"CJIB-{D0}"]
    assert stale_of(d2) == [f"CJIB/claims {d1}", f"CJIB/identities {D0}"]

    # the next night carries CJIB's d1 identities only (they hold F, not A): D0's are replaced
    d3 = D0 + dt.timedelta(days=3)
    write_claims_delivery(landing, d3, "BD", [claim("A", 60_000)])
    deliver_empty_extracts(landing, d3)
    shutil.rmtree(landing / d3.isoformat() / "CJIB")
    night = run_night(d3, data_dir=data_dir, hub_key_path=key, certs=certs)
    assert night.selection.files("identities") == [
        data_dir / "staging" / d1.isoformat() / "CJIB" / "identities.parquet"
    ]
    assert stale_of(d3) == [f"CJIB/claims {d1}", f"CJIB/identities {d1}"]
