"""Feedback from gemeenten at the hub (interfaces.md section 6, rules.md section 5): the intake
(signature, signer, signal sent to that gemeente, contract), every effect on hand-worked persons
and dates with its boundaries, the monitoring counts on that known history, and that no reason
or result reaches a partner. Real certificates, real `openssl`, real nights.

The history (every person has BD 60,000 and CJIB 10,000 in arrears since 2024-06-01, so both
partners qualify on every date; GM0363 unless said):

    D1  2025-01-05  everybody signalled (10 signals)
    D1+1            intake of GM0363's first feedback file; all in cool-down
    D2  2025-07-05  (D1 + 181: the usual cool-down is over)
    D3  2026-01-15  (S + 365, S = D1 + 10 = 2025-01-15: the last day of H's exclusion)
    D4  2026-01-16  (S + 366)
    D0  2024-12-29  run late, after all of them

    C   not_picked_up_unjustified (S): changes no rule; signalled D2, D3; repeat on D4
    P   deceased (D1 + 3): not yet on D1+1 (status_date after the run date), held from D2 on
    E   deceased dated D1 - 10, before its signal: held from D2 on; on D0 (before the signal)
        it does not count
    H   picked_up / follow_up_help (S): excluded on D2 and D3 (= S + 365), signalled on D4
    N   picked_up / no_help_wanted (S): cool-down 365: held on D2 (181 days), signalled on D3
    N2  like N, but its arrears triple by D2: signalled on D2 with ESCALATION
    R   claims in GM0363 (2) and GM0599 (1), not_resident from GM0363: to GM0599 from D2 on
    R2  claims in GM0363 only, not_resident: held_not_resident from D2 on
    L   first file: picked_up / follow_up_help (D1 + 5); second file, taken in later:
        picked_up / no_contact (D1 + 20): the later status stands, no exclusion
    L2  the reverse: no_contact (D1 + 5), then other_help_running (D1 + 20): excluded
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.feedback import feedback_files
from pipelines.feedback_file import RESULTS, STATUSES, sign_feedback
from pipelines.run import run_night
from privacy.cms import create_demo_certificates, load_certificate, load_private_key, sign
from privacy.hashing import hub_person_id
from privacy.keys import load_key_file
from tests.helpers import (
    deliver_empty_extracts,
    hub_key_file,
    pseudonym_of,
    write_claims_delivery,
)

D0 = dt.date(2024, 12, 29)
D1 = dt.date(2025, 1, 5)
D2 = D1 + dt.timedelta(days=181)
S = D1 + dt.timedelta(days=10)
D3 = S + dt.timedelta(days=365)
D4 = S + dt.timedelta(days=366)
GEMEENTEN = ["GM0363", "GM0599", "GM0014"]
PERSONS = ["C", "P", "E", "H", "N", "N2", "R", "R2", "L", "L2"]
# every status and result code (but `open`, a common word), to search for in what partners get
RESULT_CODES = RESULTS
STATUS_CODES = tuple(s for s in STATUSES if s != "open")


def days(date: dt.date, n: int) -> dt.date:
    return date + dt.timedelta(days=n)


def arrears(person: str, cents: int, gemeente: str = "GM0363") -> dict:
    return {
        "person": person,
        "imposed_cents": cents,
        "outstanding_cents": cents,
        "arrears_cents": cents,
        "arrears_since": "2024-06-01",
        "gemeente_code": gemeente,
    }


def deliver(landing: Path, date: dt.date) -> None:
    """Every person in arrears at BD and CJIB (both qualify); N2's BD arrears triple from D2."""
    bd, cjib = [], []
    for person in PERSONS:
        if person == "R":  # two claims in GM0363 and one in GM0599: routed to GM0363
            bd += [arrears("R", 30_000), arrears("R", 30_000)]
            cjib.append(arrears("R", 10_000, "GM0599"))
            continue
        big = 200_000 if person == "N2" and date >= D2 else 60_000
        bd.append(arrears(person, big))
        cjib.append(arrears(person, 10_000))
    write_claims_delivery(landing, date, "BD", bd)
    write_claims_delivery(landing, date, "CJIB", cjib)
    deliver_empty_extracts(landing, date)


class Hub:
    """A data directory with its hub key and certificates, run night by night."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.certs, self.gemeente_side = root / "certs", root / "gemeente"
        create_demo_certificates(self.certs, self.gemeente_side, GEMEENTEN)
        self.key = hub_key_file(root)
        secret = load_key_file(self.key, "hub").secret
        self.names = {hub_person_id(secret, pseudonym_of(n)): n for n in PERSONS}

    def run(self, date: dt.date):
        if not (self.data / "landing" / date.isoformat()).is_dir():
            deliver(self.data / "landing", date)
        return run_night(date, data_dir=self.data, hub_key_path=self.key, certs=self.certs)

    def decisions(self, date: dt.date) -> dict[str, tuple[str, str]]:
        """Per signalled person of the committed date: (gemeente, reasons)."""
        with duckdb.connect() as con:
            rows = con.execute(
                "select person_id, gemeente_code, reasons from read_parquet(?)",
                [str(self.data / "linked" / date.isoformat() / "signals.parquet")],
            ).fetchall()
        return {self.names[p]: (g, r) for p, g, r in rows}

    def monitoring(self, date: dt.date) -> dict[str, dict[str, int]]:
        with duckdb.connect() as con:
            frame = con.sql(
                "select * from read_parquet($file)",
                params={
                    "file": str(
                        self.data / "linked" / date.isoformat() / "signal_monitoring.parquet"
                    )
                },
            ).pl()
        return {row.pop("gemeente_code"): row for row in frame.to_dicts()}

    def signal_ids(self, date: dt.date) -> dict[str, str]:
        with duckdb.connect() as con:
            rows = con.execute(
                "select person_id, signal_id from read_parquet(?)",
                [str(self.data / "linked" / date.isoformat() / "signals.parquet")],
            ).fetchall()
        return {self.names[p]: s for p, s in rows}

    def send(self, gemeente: str, name: str, rows: list[tuple[str, dt.date, str, str]]) -> Path:
        """A feedback file signed by the gemeente with `cri-overlap feedback`'s function."""
        source = self.root / f"{gemeente}-{name}.csv"
        lines = ["signal_id;status_date;status;result"]
        lines += [f"{s};{d.isoformat()};{status};{result}" for s, d, status, result in rows]
        source.write_text("\n".join(lines) + "\n", encoding="utf-8")
        target = self.data / "feedback" / gemeente / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return sign_feedback(
            gemeente,
            source,
            self.gemeente_side / f"{gemeente}.key",
            self.gemeente_side / f"{gemeente}.crt",
            out=target,
        )

    def snapshot(self, sql: str) -> list[tuple]:
        with duckdb.connect(
            str(self.data / "warehouse" / "analytics.duckdb"), read_only=True
        ) as con:
            return con.execute(sql).fetchall()


def first_feedback(sent: dict[str, str]) -> list[tuple[str, dt.date, str, str]]:
    """GM0363's first file about the signals of D1 (the table of the module docstring)."""
    return [
        (sent["C"], S, "not_picked_up_unjustified", ""),
        (sent["P"], days(D1, 3), "deceased", ""),
        (sent["E"], days(D1, -10), "deceased", ""),
        (sent["H"], S, "picked_up", "follow_up_help"),
        (sent["N"], S, "picked_up", "no_help_wanted"),
        (sent["N2"], S, "picked_up", "no_help_wanted"),
        (sent["R"], S, "not_resident", ""),
        (sent["R2"], S, "not_resident", ""),
        (sent["L"], days(D1, 5), "picked_up", "follow_up_help"),
        (sent["L2"], days(D1, 5), "picked_up", "no_contact"),
    ]


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Hub:
    """The whole hand-worked history above, run once for the tests of this module."""
    hub = Hub(tmp_path_factory.mktemp("feedback"))
    hub.run(D1)
    sent = hub.signal_ids(D1)
    hub.d1_signals = sent
    hub.send(
        "GM0363",
        "feedback-2025-01-20.csv.p7s",
        first_feedback(sent),
    )
    hub.nights = {"D1+1": hub.run(days(D1, 1))}
    hub.send(
        "GM0363",
        "feedback-2025-02-10.csv.p7s",
        [
            (sent["L"], days(D1, 20), "picked_up", "no_contact"),
            (sent["L2"], days(D1, 20), "picked_up", "other_help_running"),
        ],
    )
    for name, date in (("D2", D2), ("D3", D3), ("D4", D4)):
        hub.nights[name] = hub.run(date)
    hub.outbox_d4 = {
        p.relative_to(hub.data): p.read_bytes()
        for p in (hub.data / "outbox").rglob("*")
        if p.is_file()
    }
    hub.nights["D0"] = hub.run(D0)  # late: before every signal
    return hub


def test_every_signal_of_the_first_night(history):
    assert history.decisions(D1) == {p: ("GM0363", "MULTI_ARREARS") for p in PERSONS}


def test_intake_takes_in_each_file_once(history):
    first = history.nights["D1+1"].results["feedback"]
    assert [(f.gemeente, f.status, f.rows, f.ignored) for f in first.files] == [
        ("GM0363", "accepted", 10, 0)
    ]
    second = history.nights["D2"].results["feedback"]
    assert [(f.file, f.rows) for f in second.files] == [
        ("feedback/GM0363/feedback-2025-02-10.csv.p7s", 2)
    ]
    assert history.nights["D3"].results["feedback"].files == []  # nothing new
    intakes = sorted((history.data / "feedback_ledger").glob("*/intake.json"))
    assert len(intakes) == 2  # one folder per intake that took something in


def test_a_status_counts_from_the_run_on_or_after_its_date(history):
    """D1+1: E's deceased (dated before its signal) counts; every other status is dated
    after D1+1 and does not count yet: the nine others are repeats in the cool-down."""
    made = history.monitoring(days(D1, 1))["GM0363"]
    assert {k: made[k] for k in MONITORED} == {
        "signals": 0,
        "escalations": 0,
        "with_identity": None,
        "held_deceased": 1,
        "excluded_debt_assistance": 0,
        "excluded_after_help": 0,
        "suppressed_repeats": 9,
        "suppressed_no_help_wanted": 0,
        "held_not_resident": 0,
        "rerouted": 0,
    }


def test_effects_on_d2(history):
    assert history.decisions(D2) == {
        "C": ("GM0363", "MULTI_ARREARS"),  # unjustified changes no rule
        "L": ("GM0363", "MULTI_ARREARS"),  # the later no_contact replaced follow_up_help
        "N2": ("GM0363", "MULTI_ARREARS|ESCALATION"),  # longer cool-down, broken by escalation
        "R": ("GM0599", "MULTI_ARREARS"),  # re-routed to its other claims' gemeente
    }
    gm0363 = history.monitoring(D2)["GM0363"]
    assert {k: gm0363[k] for k in MONITORED} == {
        "signals": 3,
        "escalations": 1,
        "with_identity": None,  # known once delivered (the ledger's copy has it)
        "held_deceased": 2,  # P and E
        "excluded_debt_assistance": 2,  # H and L2
        "excluded_after_help": 2,
        "suppressed_repeats": 1,  # N
        "suppressed_no_help_wanted": 1,
        "held_not_resident": 1,  # R2
        "rerouted": 0,
    }
    gm0599 = history.monitoring(D2)["GM0599"]
    assert (gm0599["signals"], gm0599["rerouted"]) == (1, 1)


MONITORED = (
    "signals",
    "escalations",
    "with_identity",
    "held_deceased",
    "excluded_debt_assistance",
    "excluded_after_help",
    "suppressed_repeats",
    "suppressed_no_help_wanted",
    "held_not_resident",
    "rerouted",
)


def test_exclusion_ends_after_day_365_and_the_long_cool_down_after_365(history):
    # D3 = S + 365: H still excluded; N's last signal was D1, 375 days ago: signalled again;
    # N2's was D2, 194 days ago: held by its 365 days; C and L (D2, 194 days): signalled
    assert history.decisions(D3) == {
        "C": ("GM0363", "MULTI_ARREARS"),
        "L": ("GM0363", "MULTI_ARREARS"),
        "N": ("GM0363", "MULTI_ARREARS"),
        "R": ("GM0599", "MULTI_ARREARS"),
    }
    made = history.monitoring(D3)["GM0363"]
    assert (made["excluded_after_help"], made["suppressed_no_help_wanted"]) == (2, 1)
    # D4 = S + 366: H's exclusion is over (last signal D1, 376 days ago); L2's (D1 + 20) not
    assert history.decisions(D4) == {"H": ("GM0363", "MULTI_ARREARS")}
    made = history.monitoring(D4)["GM0363"]
    assert (made["held_deceased"], made["excluded_after_help"]) == (2, 1)


def test_a_date_before_the_signal_ignores_its_feedback(history):
    """D0 runs after everything, but the signals of D1 and the feedback about them are later
    than D0: every person is signalled (nothing is delivered: signals go forward only)."""
    assert set(history.decisions(D0)) == set(PERSONS)
    made = history.monitoring(D0)["GM0363"]
    assert (made["held_deceased"], made["excluded_after_help"], made["held_not_resident"]) == (
        0,
        0,
        0,
    )
    assert not (history.data / "outbox" / D0.isoformat()).exists()


def test_the_funnel_on_the_known_history(history):
    """As of D4: the signals per month and, per the standing status of each, the funnel."""
    columns = (  # rules.md section 5: "integer columns named after these"
        "signals_sent, with_identity, feedback_received, picked_up, contact_made, help_started, "
        "unjustified, repeats, not_resident, deceased"
    )
    rows = history.snapshot(
        f"select as_of, gemeente_code, month, {columns} from signal_funnel "
        "order by month, gemeente_code"
    )
    assert rows == [
        # 10 signals of D1; statuses: C unjustified; P, E deceased; R, R2 not resident; H, N,
        # N2, L, L2 picked up (contact made: all but L's no_contact; help started: H)
        (D4, "ALL", dt.date(2025, 1, 1), 10, 0, 10, 5, 4, 1, 1, 0, 2, 2),
        (D4, "GM0363", dt.date(2025, 1, 1), 10, 0, 10, 5, 4, 1, 1, 0, 2, 2),
        (D4, "ALL", dt.date(2025, 7, 1), 4, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (D4, "GM0363", dt.date(2025, 7, 1), 3, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (D4, "GM0599", dt.date(2025, 7, 1), 1, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (D4, "ALL", dt.date(2026, 1, 1), 5, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (D4, "GM0363", dt.date(2026, 1, 1), 4, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (D4, "GM0599", dt.date(2026, 1, 1), 1, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    ]
    partners = history.snapshot(
        "select partner, month, signals, picked_up, not_picked_up from partner_feedback "
        "order by month, partner"
    )
    assert partners == [
        ("BD", dt.date(2025, 1, 1), 10, 5, 1),
        ("CJIB", dt.date(2025, 1, 1), 10, 5, 1),
        ("BD", dt.date(2025, 7, 1), 4, 0, 0),
        ("CJIB", dt.date(2025, 7, 1), 4, 0, 0),
        ("BD", dt.date(2026, 1, 1), 5, 0, 0),
        ("CJIB", dt.date(2026, 1, 1), 5, 0, 0),
    ]
    # for sharing: no cell of 1 to 9; the 10s stand
    assert history.snapshot(
        "select count(*) from agg_signal_funnel where value between 1 and 9"
    ) == [(0,)]
    assert history.snapshot(
        "select value from agg_signal_funnel where gemeente_code = 'ALL' "
        "and month = date '2025-01-01' and measure = 'feedback_received'"
    ) == [(10,)]
    assert history.snapshot(
        "select count(*) from agg_partner_feedback where value between 1 and 9"
    ) == [(0,)]
    # the monitoring of each delivered night is in the published table, with_identity filled
    assert history.snapshot(
        "select run_date, gemeente_code, signals, with_identity, held_deceased, rerouted "
        "from signal_monitoring where run_date = date '2025-07-05' order by gemeente_code"
    ) == [(D2, "GM0363", 3, 0, 2, 0), (D2, "GM0599", 1, 0, 0, 1)]


def test_partners_learn_counts_never_a_reason_or_result(history):
    exported = {path: data for path, data in history.outbox_d4.items() if "partners" in path.parts}
    feedback = history.data / "outbox" / D4.isoformat() / "partners" / "BD" / "feedback.csv"
    with feedback.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle, delimiter=";")) == [
            ["month", "signals", "picked_up", "not_picked_up"],
            ["2025-01", "10", "5", "1"],
            ["2025-07", "4", "0", "0"],
            ["2026-01", "5", "0", "0"],
        ]
    assert any(path.name == "feedback.csv" for path in exported)
    for path in (history.data / "outbox").rglob("*"):
        if path.is_file() and "partners" in path.parts:
            text = path.read_bytes()
            for code in (*RESULT_CODES, *STATUS_CODES[2:]):
                assert code.encode() not in text, (path, code)
            assert b"picked_up_" not in text and b"not_resident" not in text


def test_no_feedback_row_reaches_the_analysts_database(history):
    """Only counts: no status or result code as a value in any published partition, nor in
    any table or view of the snapshot (column names and comments may name them), and no
    status column."""
    codes = {*RESULT_CODES, *STATUS_CODES}
    for path in (history.data / "warehouse" / "history").rglob("*.parquet"):
        rows = duckdb.sql("select * from read_parquet($f)", params={"f": str(path)})
        for row in rows.fetchall():
            values = {
                str(v) for name, v in zip(rows.columns, row, strict=True) if name != "measure"
            }
            assert not codes & values, path
    text_columns = history.snapshot(
        "select schema_name, table_name, column_name from duckdb_columns() "
        "where data_type = 'VARCHAR' and database_name = current_database() "
        "and column_name <> 'measure'"  # the agg_ tables name their counts, e.g. picked_up
    )
    quoted = ", ".join(f"'{c}'" for c in sorted(codes))
    for schema, table, column in text_columns:
        found = history.snapshot(
            f'select count(*) from "{schema}"."{table}" where "{column}" in ({quoted})'
        )
        assert found == [(0,)], (table, column)
    assert history.snapshot(
        "select count(*) from duckdb_columns() where column_name in ('status', 'result')"
    ) == [(0,)]


# ---------------------------------------------------------------- refused feedback


@pytest.fixture()
def one_night(tmp_path) -> Hub:
    hub = Hub(tmp_path)
    hub.run(D1)
    return hub


def write_signed(hub: Hub, folder: str, name: str, text: str, signer: str) -> Path:
    """A file signed by `signer` (not through the checking tool), into `feedback/<folder>/`."""
    target = hub.data / "feedback" / folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(
        sign(
            text.encode(),
            load_certificate(hub.gemeente_side / f"{signer}.crt"),
            load_private_key(hub.gemeente_side / f"{signer}.key"),
        )
    )
    return target


def test_refused_feedback_is_listed_and_the_run_goes_on(one_night):
    hub = one_night
    sent = hub.signal_ids(D1)
    good = hub.send(
        "GM0363", "feedback-2025-01-06.csv.p7s", [(sent["P"], days(D1, 1), "deceased", "")]
    )
    header = "signal_id;status_date;status;result\n"
    # unsigned: the CSV itself under the right name
    unsigned = hub.data / "feedback" / "GM0363" / "feedback-2025-01-07.csv.p7s"
    unsigned.write_text(header + f"{sent['H']};2025-01-06;picked_up;follow_up_help\n")
    # signed by GM0599, put in GM0363's folder
    write_signed(
        hub,
        "GM0363",
        "feedback-2025-01-08.csv.p7s",
        header + f"{sent['H']};2025-01-06;picked_up;follow_up_help\n",
        "GM0599",
    )
    # a signal GM0599 never received (GM0363's), next to nothing else: taken in, row ignored
    hub.send("GM0599", "feedback-2025-01-06.csv.p7s", [(sent["N"], days(D1, 1), "deceased", "")])
    # malformed: a status that is not a code, and a result without picked_up (signed directly)
    write_signed(
        hub,
        "GM0363",
        "feedback-2025-01-09.csv.p7s",
        header + f"{sent['C']};2025-01-06;gone;\n{sent['L']};2025-01-06;open;quick_fix\n",
        "GM0363",
    )
    # not CSV at all (a quote never closed), before the good file in the same night
    write_signed(
        hub,
        "GM0363",
        "feedback-2025-01-05.csv.p7s",
        header + f'{sent["E"]};2025-01-06;"deceased;\n',
        "GM0363",
    )
    # not a feedback file name; a name whose date is no date
    (hub.data / "feedback" / "GM0363" / "notes.txt").write_text("hello")
    hub.send("GM0363", "feedback-2025-13-45.csv.p7s", [(sent["H"], days(D1, 1), "open", "")])
    # signed and well named, but not in a gemeente's folder: at the top, and in a lower-case one
    stray = hub.send("GM0363", "feedback-2025-01-10.csv.p7s", [(sent["H"], S, "open", "")])
    (hub.data / "feedback" / "gm0363").mkdir()
    shutil.copyfile(stray, hub.data / "feedback" / "gm0363" / stray.name)
    stray.rename(hub.data / "feedback" / stray.name)
    night = hub.run(days(D1, 1))
    lines = {Path(f.file).name: f for f in night.results["feedback"].files}
    assert lines["feedback-2025-01-06.csv.p7s"].status == "accepted"
    gm0599 = next(f for f in night.results["feedback"].files if f.gemeente == "GM0599")
    assert (gm0599.status, gm0599.rows, gm0599.ignored, gm0599.ignored_lines) == (
        "accepted",
        0,
        1,
        [2],
    )
    assert "not sent to GM0599" in gm0599.line()
    assert "not signed by GM0363" in lines["feedback-2025-01-07.csv.p7s"].reason
    assert "not signed by GM0363" in lines["feedback-2025-01-08.csv.p7s"].reason
    malformed = lines["feedback-2025-01-09.csv.p7s"]
    assert malformed.status == "refused"
    assert "status_known" in malformed.reason and "1 more rule" in malformed.reason
    assert "not a feedback file name" in lines["notes.txt"].reason
    assert "date in the file name is not a date" in lines["feedback-2025-13-45.csv.p7s"].reason
    assert {f.file: f.status for f in night.results["feedback"].files if not f.gemeente} == {
        "feedback/feedback-2025-01-10.csv.p7s": "refused",
        "feedback/gm0363": "refused",
    }
    assert "put it in feedback/<GMxxxx>/" in lines["gm0363"].line()
    assert "unparseable" in lines["feedback-2025-01-05.csv.p7s"].reason
    for outcome in night.results["feedback"].files:
        assert "\n" not in outcome.line() and sent["P"] not in outcome.line()
    # the run went on and the good file counted: P held as deceased; N not
    assert night.exit_code == 0
    made = hub.monitoring(days(D1, 1))["GM0363"]
    assert made["held_deceased"] == 1
    # the same bytes again change nothing; a refused file is listed again until replaced
    again = hub.run(days(D1, 2)).results["feedback"]
    assert good.name not in {Path(f.file).name for f in again.files}
    assert {Path(f.file).name for f in again.refused} == {
        "feedback-2025-01-05.csv.p7s",
        "feedback-2025-01-07.csv.p7s",
        "feedback-2025-01-08.csv.p7s",
        "feedback-2025-01-09.csv.p7s",
        "feedback-2025-01-10.csv.p7s",
        "feedback-2025-13-45.csv.p7s",
        "gm0363",
        "notes.txt",
    }
    rows = duckdb.sql(
        "select signal_id, status from read_parquet(?)",
        params=[[str(p) for p in feedback_files(hub.data)]],
    ).fetchall()
    assert rows == [(sent["P"], "deceased")]


def test_a_file_without_a_certificate_at_the_hub_is_refused(one_night):
    hub = one_night
    sent = hub.signal_ids(D1)
    hub.send("GM0363", "feedback-2025-01-06.csv.p7s", [(sent["P"], D1, "deceased", "")])
    os.remove(hub.certs / "gemeenten" / "GM0363.crt")
    night = hub.run(days(D1, 1))
    (outcome,) = night.results["feedback"].files
    assert outcome.status == "refused" and "no certificate for GM0363" in outcome.reason
    shutil.rmtree(hub.data / "feedback")


# ---------------------------------------------------------------- from analytics 1.5.0 to 1.6.0

NEW_MONITORING_COLUMNS = (
    "with_identity",
    "excluded_after_help",
    "suppressed_no_help_wanted",
    "held_deceased",
    "held_not_resident",
    "rerouted",
)


def as_if_published_under_1_5_0(hub: Hub, date: dt.date) -> None:
    """Make `date` look as a hub before this version left it: its ledger monitoring and its
    published partition without the new columns, the partition recorded under 1.5.0, and no
    signal_partners."""
    old = ", ".join(NEW_MONITORING_COLUMNS)
    files = [
        *(hub.data / "ledger" / date.isoformat()).glob("*/signal_monitoring.parquet"),
        *(hub.data / "warehouse" / "history" / date.isoformat()).glob(
            "*/signal_monitoring.parquet"
        ),
    ]
    for path in files:
        frame = duckdb.sql(
            f"select * exclude ({old}) from read_parquet($f)", params={"f": str(path)}
        ).pl()
        frame.write_parquet(path)
    for path in (hub.data / "ledger" / date.isoformat()).glob("*/signal_partners.parquet"):
        path.unlink()
    for record in (hub.data / "warehouse" / "history" / date.isoformat()).glob("*/version.json"):
        document = json.loads(record.read_text())
        document["contract"] = "analytics-1.5.0"
        document["tables"] = [t for t in document["tables"] if t != "signal_partners"]
        (record.parent / "signal_partners.parquet").unlink(missing_ok=True)
        record.write_text(json.dumps(document))


def test_a_hub_upgraded_from_1_5_0_reads_its_older_nights_with_nulls(one_night):
    """Older partitions are not rewritten: the views read them with nulls for the columns
    added since (known from the contract version each was published under), a republish of an
    older date from its older ledger files adds them as nulls, and the funnel counts on."""
    hub = one_night
    as_if_published_under_1_5_0(hub, D1)
    hub.run(days(D1, 1))
    hub.run(D1)  # a rerun of the older date: published again from its 1.5.0 ledger files
    rows = hub.snapshot(
        "select run_date, signals, held_deceased, with_identity from signal_monitoring "
        "where gemeente_code = 'GM0363' order by run_date"
    )
    assert rows == [(D1, 10, None, None), (days(D1, 1), 0, 0, 0)]
    assert hub.snapshot(
        "select signals_sent, with_identity from signal_funnel where gemeente_code = 'ALL'"
    ) == [(10, 0)]
    # signal_partners only from the night delivered under 1.6.0 (none qualified: all repeats)
    assert hub.snapshot("select count(*) from signal_partners") == [(0,)]


def test_the_readme_maps_every_ddas_label_as_the_code_does():
    from pipelines.feedback_file import DDAS_RESULT_LABELS, DDAS_STATUS_LABELS
    from pipelines.settings import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text("utf-8")
    rows = [
        (column, label, code)
        for column, label, code in (
            (cells[0], cells[1], cells[2].strip("`"))
            for line in readme.splitlines()
            if line.startswith(("| status |", "| result |"))
            for cells in [[c.strip() for c in line.strip("|").split("|")]]
        )
    ]
    assert rows == [("status", label, code) for label, code in DDAS_STATUS_LABELS.items()] + [
        ("result", label, code) for label, code in DDAS_RESULT_LABELS.items()
    ]


def test_a_rerun_of_the_last_delivered_date_ignores_feedback_on_its_own_signals(one_night):
    """Feedback about a date's own signals never changes them: the rerun re-delivers the same
    signals to the same gemeenten (R is not re-routed under the same signal id), and the
    gemeente's feedback about them is taken in for the next nights."""
    hub = one_night
    before = hub.decisions(D1)
    sent = hub.signal_ids(D1)
    hub.send(
        "GM0363",
        "feedback-2025-01-05.csv.p7s",
        [
            (sent["P"], D1, "deceased", ""),
            (sent["H"], D1, "picked_up", "follow_up_help"),
            (sent["R"], D1, "not_resident", ""),
        ],
    )
    night = hub.run(D1)
    assert hub.decisions(D1) == before and hub.signal_ids(D1) == sent
    (taken,) = night.results["feedback"].files
    assert (taken.rows, taken.ignored) == (3, 0)
    made = hub.run(days(D1, 1))
    held = hub.monitoring(days(D1, 1))["GM0363"]
    assert (held["held_deceased"], held["excluded_after_help"]) == (1, 1)
    assert made.exit_code == 0


def test_partners_hear_only_of_signals_that_were_delivered(tmp_path):
    """UWV delivered nothing within the staleness limit: no signal files that night, so the
    partners' feedback files do not count its signals."""
    hub = Hub(tmp_path)
    deliver(hub.data / "landing", D1)
    shutil.rmtree(hub.data / "landing" / D1.isoformat() / "UWV")
    night = hub.run(D1)
    assert not night.delivery.signals_delivered
    assert not list((hub.data / "outbox").rglob("feedback.csv"))


def test_a_withheld_night_withholds_its_month_in_the_funnel():
    """GM0363 sent 12 signals on 3 March (shown) and 3 on 4 March (withheld in
    agg_signal_monitoring): the funnel's March total of 15 would give the 3 away."""
    from pipelines.aggregates import agg_signal_funnel
    from pipelines.contracts import load_contract
    from pipelines.stage_contracts import empty_table
    from pipelines.versions import ANALYTICS_CONTRACT

    contract = load_contract(*ANALYTICS_CONTRACT)
    with duckdb.connect() as con:
        con.execute(
            "create table agg_signal_monitoring as select * from (values "
            "(date '2026-03-03', 'GM0363', 'signals', 12, false), "
            "(date '2026-03-04', 'GM0363', 'signals', null, true), "
            "(date '2026-03-04', 'ALL', 'signals', null, true)) "
            "as t(run_date, gemeente_code, measure, value, suppressed)"
        )
        empty_table(con, contract, "signal_funnel")
        con.execute(
            "insert into signal_funnel values "
            "(date '2026-03-31', 'GM0363', date '2026-03-01', 15, 15, 0, 0, 0, 0, 0, 0, 0, 0), "
            "(date '2026-03-31', 'ALL', date '2026-03-01', 15, 15, 0, 0, 0, 0, 0, 0, 0, 0)"
        )
        agg_signal_funnel(con, contract)
        shown = con.execute(
            "select gemeente_code, value, suppressed from agg_signal_funnel "
            "where measure = 'signals_sent' order by gemeente_code"
        ).fetchall()
    assert shown == [("ALL", None, True), ("GM0363", None, True)]


def test_a_refusal_never_prints_control_characters():
    from pipelines.feedback import FeedbackFile

    line = FeedbackFile(
        "GM0363", "feedback/GM0363/x", "refused", reason="column \x1b[31mEVIL"
    ).line()
    assert "\x1b" not in line and "\\x1b" in line


def test_retention_keeps_of_old_signals_only_a_standing_deceased_or_not_resident(one_night):
    """Feedback about signals of run dates the retention period drops goes, and the files
    taken in and named before the cut go from the gemeente's folder; what lasts stays: a
    standing deceased (P) or not_resident (R), and help whose exclusion still runs (H). A
    deceased replaced by a later status (L) goes with the rest."""
    from pipelines.feedback import expire
    from pipelines.layout import Layout

    hub = one_night
    sent = hub.signal_ids(D1)
    hub.send(
        "GM0363",
        "feedback-2025-01-05.csv.p7s",
        [
            (sent["P"], D1, "deceased", ""),
            (sent["R"], D1, "not_resident", ""),
            (sent["H"], D1, "picked_up", "follow_up_help"),
            (sent["L"], D1, "deceased", ""),
        ],
    )
    hub.run(days(D1, 1))
    hub.send("GM0363", "feedback-2025-01-07.csv.p7s", [(sent["L"], days(D1, 2), "open", "")])
    hub.run(days(D1, 3))

    def kept() -> list[tuple]:
        files = [str(p) for p in feedback_files(hub.data)]
        return sorted(
            duckdb.sql(
                "select signal_id, status from read_parquet($f)", params={"f": files}
            ).fetchall()
        )

    assert len(kept()) == 5
    # killed right after the compacted file replaced the old one (a kill with intakes' rows
    # files still there: tests/test_feedback_ledger.py)
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import datetime as dt, sys; from pipelines.feedback import expire; "
            "from pipelines.layout import Layout; "
            "expire(Layout(sys.argv[1]), dt.date.fromisoformat(sys.argv[2]))",
            str(hub.data),
            days(D1, 1).isoformat(),
        ],
        env={**os.environ, "CRI_KILL_AT": "feedback_compacted"},
        check=False,
    )
    assert killed.returncode == -9
    ledger = hub.data / "feedback_ledger"
    assert feedback_files(hub.data) == [ledger / "compacted.parquet"]
    assert list(ledger.glob("*/feedback.parquet")) == []  # the nights compacted them
    assert len(list(ledger.glob("*/intake.json"))) == 2  # what was taken in stays known
    assert expire(Layout(hub.data), days(D1, 1)) == 0  # the killed run's work was whole
    assert kept() == sorted(
        [(sent["P"], "deceased"), (sent["R"], "not_resident"), (sent["H"], "picked_up")]
    )
    assert [p.name for p in (hub.data / "feedback" / "GM0363").iterdir()] == [
        "feedback-2025-01-07.csv.p7s"
    ]
    assert expire(Layout(hub.data), days(D1, 1)) == 0  # done: nothing more to do
    # the effects stand: P held as deceased, H excluded, R re-routed to GM0599
    made = hub.run(days(D1, 190))
    assert made.exit_code == 0
    signalled = hub.decisions(days(D1, 190))
    assert signalled.keys() == set(PERSONS) - {"P", "H"}
    assert signalled["R"] == ("GM0599", "MULTI_ARREARS")


def test_a_name_without_a_real_date_taken_in_before_that_was_checked_is_not_refused(tmp_path):
    """Upgrade: a hub that took in `feedback-2025-02-30.csv.p7s` before names were checked for a
    real date knows its bytes; the intake does not list it as refused night after night, and
    expiry removes it like any file taken in. The same name with new bytes is refused."""
    from pipelines.feedback import _expire_inbox, _verify
    from pipelines.fileio import sha256_file
    from pipelines.layout import Layout

    layout = Layout(tmp_path / "data")
    path = layout.feedback / "GM0363" / "feedback-2025-02-30.csv.p7s"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"signed bytes")
    seen = {("GM0363", sha256_file(path))}
    relative = path.relative_to(layout.data_dir).as_posix()
    assert _verify("GM0363", path, relative, tmp_path / "certs", seen) is None
    refusal = _verify("GM0363", path, relative, tmp_path / "certs", set())
    assert refusal.startswith("the date in the file name is not a date")
    _expire_inbox(layout, dt.date(2020, 1, 1), set())
    assert path.exists()  # never taken in: stays, and is reported
    _expire_inbox(layout, dt.date(2020, 1, 1), seen)
    assert not path.exists()
