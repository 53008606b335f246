"""Early-warning signals: every rule branch at its exact bounds, the cool-down with escalation
over several run dates, per-gemeente files, and delivery that only the right gemeente opens."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from pipelines.gemeente import open_signal_file
from pipelines.run import run_night
from privacy.cms import CmsError, create_demo_certificates
from privacy.hashing import hub_person_id
from privacy.keys import load_key_file
from privacy.recipients import person_ref, signal_id
from tests.helpers import (
    deliver_empty_extracts,
    hub_key_file,
    pseudonym_of,
    write_claims_delivery,
    write_income_delivery,
)

D = dt.date(2026, 11, 22)
HEADER = (
    "signal_id;signal_date;person_ref;reasons;partners;arrears_cents;outstanding_cents;"
    "arrears_since;plan_outcome;plan_monthly_cents;crisis;identity_key;identity_sealed"
)


def days_before(date: dt.date, days: int) -> str:
    return (date - dt.timedelta(days=days)).isoformat()


def claim(person, cents, since_days, date=D, **extra):
    return {
        "person": person,
        "imposed_cents": cents,
        "outstanding_cents": cents,
        "arrears_cents": cents,
        "arrears_since": days_before(date, since_days),
        **extra,
    }


@pytest.fixture()
def hub(tmp_path):
    return tmp_path / "data", hub_key_file(tmp_path)


def signals_of(data_dir: Path, date: dt.date, key: Path) -> dict[str, tuple]:
    """{person name: (reasons, gemeente, crisis)} for the persons P.. signalled on `date`."""
    secret = load_key_file(key, "hub").secret
    with duckdb.connect(str(data_dir / "warehouse" / "analytics.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select person_id, reasons, gemeente_code, crisis from signals where run_date = $d",
            {"d": date},
        ).fetchall()
    names = {
        hub_person_id(secret, pseudonym_of(n)): n
        for n in [f"{c}{i}" for c in "ABCEFGHIXYZ" for i in ("", "1", "2")]
    }
    return {names[p]: (r, g, c) for p, r, g, c in rows}


def test_each_rule_at_its_bounds(hub):
    data_dir, key = hub
    landing = data_dir / "landing"
    write_claims_delivery(landing, D, "DUO", [claim("A", 27_000, 0), claim("B", 26_999, 0)])
    write_claims_delivery(
        landing,
        D,
        "CJIB",
        [
            claim("A", 10_000, 30),
            claim("B", 10_000, 30),
            claim("F", 10_000, 29),
            claim("H", 10_000, 30, debt_assistance="true"),
            claim("I", 5_000, 400),
            claim("G", 10_000, 30, stage="garnishment", gemeente_code="GM0599"),
        ],
    )
    write_claims_delivery(landing, D, "CAK", [claim("C", 10_000, 150), claim("E", 10_000, 149)])
    write_claims_delivery(landing, D, "TSL", [claim("C", 10_000, 30), claim("E", 10_000, 30)])
    write_claims_delivery(
        landing,
        D,
        "BD",
        [
            claim("F", 60_000, 0),
            claim("H", 60_000, 0),
            claim("I", 10_000, 400),
            claim("G", 60_000, 0, gemeente_code="GM0518"),
        ],
    )
    write_income_delivery(landing, D, [{"person": "I", "net_income_cents": 100_000}])
    deliver_empty_extracts(data_dir / "landing", D)
    summary = run_night(D, data_dir=data_dir, hub_key_path=key)
    assert signals_of(data_dir, D, key) == {
        "A": ("MULTI_ARREARS", "GM0363", False),  # DUO 270.00 exactly + CJIB 30 days exactly
        "C": ("MULTI_ARREARS", "GM0363", False),  # CAK 150 days exactly
        "I": ("NO_CAPACITY", "GM0363", False),  # below thresholds, capacity 0: refer
        "G": ("MULTI_ARREARS", "GM0518", True),  # tie GM0518/GM0599 -> smaller; garnishment
    }  # B: DUO 269.99; E: CAK 149 days; F: CJIB 29 days; H: debt assistance (excluded)
    assert summary.signals.excluded == 1
    with duckdb.connect(str(summary.snapshot), read_only=True) as con:
        monitoring = con.execute(
            "select gemeente_code, signals, multi_arrears, no_capacity, "
            "excluded_debt_assistance from signal_monitoring "
            "order by 1"
        ).fetchall()
    assert monitoring == [("GM0363", 3, 2, 1, 1), ("GM0518", 1, 1, 0, 0)]


def test_the_signal_file_and_its_manifest(hub):
    data_dir, key = hub
    landing = data_dir / "landing"
    write_claims_delivery(landing, D, "BD", [claim("A", 60_000, 10)])
    write_claims_delivery(landing, D, "CJIB", [claim("A", 10_000, 40)])
    deliver_empty_extracts(data_dir / "landing", D)
    run_night(D, data_dir=data_dir, hub_key_path=key)
    folder = data_dir / "outbox" / D.isoformat() / "GM0363"
    raw = (folder / "signals.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").splitlines()
    secret = load_key_file(key, "hub").secret
    person = hub_person_id(secret, pseudonym_of("A"))
    assert lines == [
        HEADER,
        f"{signal_id(secret, person, D)};2026-11-22;"
        f"{person_ref(secret, 'GM0363', person)};MULTI_ARREARS;BD|CJIB;70000;70000;"
        f"{days_before(D, 40)};standard;5834;false;;",  # no partner sealed A's identity
    ]
    manifest = json.loads((folder / "signals.manifest.json").read_text())
    assert manifest["gemeente_code"] == "GM0363" and manifest["row_count"] == 1
    assert manifest["rules_version"] == "2" and manifest["run_date"] == "2026-11-22"
    assert manifest["format_version"] == 2
    import hashlib

    assert manifest["sha256"] == hashlib.sha256(raw).hexdigest()
    assert sorted(p.name for p in (data_dir / "outbox" / D.isoformat()).iterdir()) == [
        "GM0363",
        "delivery.json",  # what this outbox delivered, and when (also in the ledger)
        "partners",
    ]  # gemeenten without signals get no folder


def test_cooldown_and_escalation_over_several_runs(hub):
    data_dir, key = hub
    landing = data_dir / "landing"
    d1 = dt.date(2025, 6, 1)
    dates = {
        "d1": d1,
        "d2": d1 + dt.timedelta(days=30),
        "d3": d1 + dt.timedelta(days=60),
        "d4": d1 + dt.timedelta(days=90),
        "d5": d1 + dt.timedelta(days=270),
        "d6": d1 + dt.timedelta(days=451),
    }
    # X: signalled d1; d2 the same -> held back; d3 arrears 105,000 = 150% of 70,000 ->
    # ESCALATION; d4 DUO qualifies too -> ESCALATION (new partner); d5, exactly 180 days after
    # the last signal (d4, the bound is inclusive), nothing new -> held back; d6, 361 days after
    # d4 -> a new signal without ESCALATION.
    bd = {"d1": 60_000, "d2": 60_000, "d3": 95_000, "d4": 95_000, "d5": 95_000, "d6": 95_000}
    results = {}
    for name, date in dates.items():
        write_claims_delivery(landing, date, "BD", [claim("X", bd[name], 0, date)])
        write_claims_delivery(landing, date, "CJIB", [claim("X", 10_000, 40, date)])
        if name in ("d4", "d5", "d6"):
            write_claims_delivery(landing, date, "DUO", [claim("X", 27_000, 0, date)])
        deliver_empty_extracts(data_dir / "landing", date)
        summary = run_night(date, data_dir=data_dir, hub_key_path=key)
        results[name] = (
            signals_of(data_dir, date, key).get("X", (None,))[0],
            summary.signals.suppressed_repeats,
        )
    assert dates["d5"] - dates["d4"] == dt.timedelta(days=180)
    assert results == {
        "d1": ("MULTI_ARREARS", 0),
        "d2": (None, 1),
        "d3": ("MULTI_ARREARS|ESCALATION", 0),
        "d4": ("MULTI_ARREARS|ESCALATION", 0),
        "d5": (None, 1),
        "d6": ("MULTI_ARREARS", 0),
    }
    # A rerun of d3 neither doubles nor loses its signal; its id is stable.
    secret = load_key_file(key, "hub").secret
    expected_id = signal_id(secret, hub_person_id(secret, pseudonym_of("X")), dates["d3"])
    deliver_empty_extracts(data_dir / "landing", dates["d3"])
    run_night(dates["d3"], data_dir=data_dir, hub_key_path=key)
    with duckdb.connect(str(data_dir / "warehouse" / "analytics.duckdb"), read_only=True) as con:
        ids = con.execute(
            "select signal_id from signals where run_date = $d", {"d": dates["d3"]}
        ).fetchall()
    assert ids == [(expected_id,)]


def test_person_refs_stable_per_gemeente_and_unlinkable_between(hub):
    secret = b"k" * 32
    person = "0123456789abcdef0123456789abcdef"
    assert person_ref(secret, "GM0363", person) == person_ref(secret, "GM0363", person)
    assert person_ref(secret, "GM0363", person) != person_ref(secret, "GM0599", person)
    assert person_ref(secret, "GM0363", person) != person_ref(b"j" * 32, "GM0363", person)
    refs = {person_ref(secret, f"GM{i:04d}", person) for i in range(50)}
    assert len(refs) == 50


@pytest.fixture()
def delivered(hub, tmp_path):
    data_dir, key = hub
    landing = data_dir / "landing"
    write_claims_delivery(
        landing, D, "BD", [claim("A", 60_000, 10), claim("B", 60_000, 10, gemeente_code="GM0599")]
    )
    write_claims_delivery(
        landing, D, "CJIB", [claim("A", 10_000, 40), claim("B", 10_000, 40, gemeente_code="GM0599")]
    )
    certs, gemeente_keys = tmp_path / "certs", tmp_path / "gemeente"
    create_demo_certificates(certs, gemeente_keys, ["GM0363"])  # GM0599 has no certificate
    deliver_empty_extracts(data_dir / "landing", D)
    summary = run_night(D, data_dir=data_dir, hub_key_path=key, certs=certs)
    return data_dir, summary, gemeente_keys


def test_delivery_waits_for_a_missing_certificate(delivered):
    data_dir, summary, _ = delivered
    assert summary.delivery.delivered == ["GM0363"] and summary.delivery.waiting == ["GM0599"]
    outbox = data_dir / "outbox" / D.isoformat()
    assert (outbox / "GM0363" / "signals.csv.p7m").is_file()
    assert not (outbox / "GM0599" / "signals.csv.p7m").exists()
    assert (outbox / "GM0599" / "signals.csv").is_file()  # waiting, not lost


def test_openssl_decrypts_and_verifies_the_exact_csv(delivered, tmp_path):
    """The README's stock-openssl recipe (docs/open-signals-openssl.sh: signed manifest, decrypt,
    verify, sha256, each step checked) opens the hub's real file; open-signals gives the same
    rows with `bsn` in place of the two identity columns."""
    data_dir, _, keys = delivered
    assert shutil.which("openssl"), "openssl is required for this test (.ci/run installs it)"
    message = data_dir / "outbox" / D.isoformat() / "GM0363" / "signals.csv.p7m"
    recipe = Path(__file__).resolve().parents[1] / "docs" / "open-signals-openssl.sh"
    subprocess.run(
        ["bash", str(recipe), str(message.parent)]
        + [str(keys / name) for name in ("GM0363.key", "GM0363.crt", "ca.crt")]
        + [str(tmp_path / "stock")],
        capture_output=True,
        check=True,
    )
    verified = (tmp_path / "stock" / "signals.csv").read_bytes()
    assert verified == (message.with_name("signals.csv")).read_bytes()
    opened = open_signal_file(
        message,
        key=keys / "GM0363.key",
        cert=keys / "GM0363.crt",
        ca=keys / "ca.crt",
        out=tmp_path / "opened.csv",
    )
    header, *rows = verified.decode("utf-8").splitlines()
    expected = [header.rsplit(";", 2)[0] + ";bsn"] + [r.rsplit(";", 2)[0] + ";" for r in rows]
    assert opened.rows == 1 and opened.path.read_text("utf-8").splitlines() == expected


def test_another_gemeente_cannot_open_it(delivered, tmp_path):
    data_dir, _, keys = delivered
    create_demo_certificates(tmp_path / "other-ca", tmp_path / "other", ["GM0599"])
    message = data_dir / "outbox" / D.isoformat() / "GM0363" / "signals.csv.p7m"
    with pytest.raises(CmsError, match="for GM0363, not for GM0599"):
        open_signal_file(
            message,
            key=tmp_path / "other" / "GM0599.key",
            cert=tmp_path / "other" / "GM0599.crt",
            ca=keys / "ca.crt",
        )
    with pytest.raises(CmsError, match="cannot decrypt"):  # claiming to be GM0363 changes nothing
        open_signal_file(
            message,
            key=tmp_path / "other" / "GM0599.key",
            cert=tmp_path / "other" / "GM0599.crt",
            ca=keys / "ca.crt",
            gemeente="GM0363",
        )
    failed = subprocess.run(
        [
            "openssl",
            "cms",
            "-decrypt",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(message),
            "-inkey",
            str(tmp_path / "other" / "GM0599.key"),
            "-recip",
            str(tmp_path / "other" / "GM0599.crt"),
        ],
        capture_output=True,
    )
    assert failed.returncode != 0


def test_a_gemeente_opens_its_file_where_it_saved_it_even_renamed(delivered, tmp_path):
    """Without --out the CSV lands next to the message (the gemeente's own folder), never in
    the current folder; a renamed message still finds the hub's `signals.manifest.json`."""
    data_dir, _, keys = delivered
    outbox = data_dir / "outbox" / D.isoformat() / "GM0363"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(outbox / "signals.csv.p7m", inbox / f"GM0363-{D}.p7m")
    shutil.copy(outbox / "signals.manifest.json", inbox / "signals.manifest.json")
    shutil.copy(outbox / "signals.manifest.json.p7s", inbox / "signals.manifest.json.p7s")
    opened = open_signal_file(
        inbox / f"GM0363-{D}.p7m",
        key=keys / "GM0363.key",
        cert=keys / "GM0363.crt",
        ca=keys / "ca.crt",
    )
    assert opened.path == inbox / f"signals-GM0363-{D}.csv"
    assert opened.rows == 1 and opened.with_identity == 0  # no partner sealed identities here
