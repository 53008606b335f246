"""The run report (`reports/<date>/index.html`) rendered from a small hand-made data directory:
a snapshot with the analytics contract's own tables, the run's monitoring file, receipts and a
quarantined delivery. Stage timings keep the pipeline's order, held-back signals are counted with
their reason, a hostile partner folder name is escaped, rejected and stale datasets are named.

Then the pages two real nights write (the hand-worked history of tests/test_feedback.py, cut to
its first two run dates, plus two persons of its own): what the gemeenten' feedback held back
and why, the national funnel and each partner's picked-up share, all checked by hand; and the
first night, before any feedback, saying there is none."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path, PurePosixPath

import duckdb
import pytest

from pipelines.contracts import load_contract
from pipelines.layout import Layout
from pipelines.link import ANALYTICS_CONTRACT
from pipelines.publish import OWN_TABLES, PUBLISHED
from pipelines.records import REASON, write_record
from pipelines.report import render_report, write_report
from pipelines.settings import SQL_DIR
from pipelines.stage_contracts import table_schema
from privacy.hashing import hub_person_id
from privacy.keys import load_key_file
from tests.helpers import deliver_empty_extracts, pseudonym_of, write_claims_delivery
from tests.test_feedback import D1, D2, Hub, arrears, first_feedback
from tests.test_feedback import PERSONS as FEEDBACK_PERSONS

DATE = dt.date(2026, 11, 22)
PIPELINE_ORDER = {"ingest": 1.5, "link": 9.0, "plans": 0.4, "signals": 3.2, "publish": 2.0}
HOSTILE = "<script>"  # a partner folder name: no slash, but markup
MESSAGE = "the manifest says 10 rows, the file has 9"
ROOT = Path(__file__).resolve().parents[1]


def make_snapshot(layout: Layout, *, delivered: bool = True, note: str | None = None) -> None:
    """Every published table and every table of the snapshot itself (empty, typed as the
    contract says), plus one run of DATE with claims at BD and CJIB, one stale dataset, and no
    delivered signals."""
    contract = load_contract(*ANALYTICS_CONTRACT)
    layout.snapshot.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(layout.snapshot)) as con:
        for table in (*PUBLISHED, *OWN_TABLES):
            columns = ", ".join(
                f'"{p.name}" {p.physicalType}' for p in table_schema(contract, table).properties
            )
            con.execute(f"create table {table} ({columns})")
        con.execute(
            "insert into runs by name select $d as run_date, 3 as claims, 2 as persons, "
            "['CJIB/claims'] as datasets_stale, [] as datasets_unchanged, "
            "[] as partners_left_out, $delivered as signals_delivered, $note as delivery_note",
            {"d": DATE, "delivered": delivered, "note": note},
        )
        con.execute(
            "insert into claims by name select $d as run_date, unnest(['BD', 'CJIB']) as partner",
            {"d": DATE},
        )
        con.execute("insert into overlap_counts values ($d, 1, 1), ($d, 2, 1)", {"d": DATE})
        con.execute("insert into overlap_pairs values ($d, 'BD', 'CJIB', 1)", {"d": DATE})


def make_monitoring(
    layout: Layout,
    *,
    signals: int,
    suppressed: int,
    excluded: int,
    feedback: dict[str, int] | None = None,
) -> None:
    """The run's own `signal_monitoring.parquet`: as a signals stage before contract 1.6.0
    wrote it, or, with `feedback` (column -> count), with the columns of the gemeenten'
    feedback as well."""
    folder = layout.linked_date(DATE)
    folder.mkdir(parents=True, exist_ok=True)
    extra = "".join(f", {int(n)}::bigint as {column}" for column, n in (feedback or {}).items())
    with duckdb.connect() as con:
        con.execute(
            "copy (select $d::date as run_date, 'GM0363' as gemeente_code, $s::bigint as signals,"
            " $s::bigint as multi_arrears, 0::bigint as no_capacity, 0::bigint as escalations, "
            f"$e::bigint as excluded_debt_assistance, $r::bigint as suppressed_repeats{extra}) "
            f"to '{folder / 'signal_monitoring.parquet'}' (format parquet)",
            {"d": DATE, "s": signals, "e": excluded, "r": suppressed},
        )


def make_records(layout: Layout, partner_folder: str = "CJIB", message: str = MESSAGE) -> None:
    """An accepted BD/claims (its receipt) and a rejected delivery from `partner_folder`."""
    write_record(
        layout.staging_date(DATE) / "BD" / "claims.receipt.json",
        {"partner": "BD", "dataset": "claims", "rows": 1234},
    )
    write_record(
        layout.quarantine_date(DATE) / partner_folder / "claims" / REASON,
        {
            "partner": partner_folder,
            "dataset": "claims",
            "rule": "row_count_matches_manifest",
            "message": message,
            "rows": 1,
            "example_lines": [4, 7],
        },
    )


@pytest.fixture()
def layout(tmp_path) -> Layout:
    layout = Layout(tmp_path / "data")
    make_snapshot(layout)
    make_records(layout)
    return layout


def figure(page: str, caption: str) -> str:
    """The HTML of the figure whose caption starts with `caption`."""
    found = re.search(rf"<figure><figcaption>{re.escape(caption)}.*?</figure>", page, re.S)
    assert found, f"no figure {caption!r} in the page"
    return found.group(0)


def section(page: str, heading: str) -> str:
    """The HTML from an `<h2>` heading to the next one."""
    return page.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]


def test_stage_timings_are_in_pipeline_order_not_by_duration(layout):
    page = render_report(layout.data_dir, DATE, stage_seconds=PIPELINE_ORDER)
    timings = figure(page, "Seconds per stage")
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', timings)
    assert labels == list(PIPELINE_ORDER)
    assert "9 s" in timings and "0.4 s" in timings


def test_held_back_signals_are_counted_with_their_reason_when_none_are_new(layout):
    make_monitoring(layout, signals=0, suppressed=1200, excluded=7)
    page = section(render_report(layout.data_dir, DATE), "Signals to gemeenten")
    assert "No new signals in this run; 1,207 held back" in page
    held = page.split("<h3>Held back</h3>", 1)[1]
    assert re.search(r"cool-down: signalled within the last 180 days.*?<td>1,200</td>", held, re.S)
    assert re.search(r"excluded: in debt assistance</td><td>7</td>", held)
    assert "<p>none</p>" not in page


def test_signals_not_delivered_are_held_back_with_the_delivery_note(tmp_path):
    layout = Layout(tmp_path / "data")
    note = "no signal files delivered: CJIB/claims left out (no accepted data within 7 days)"
    make_snapshot(layout, delivered=False, note=note)
    make_monitoring(layout, signals=40, suppressed=0, excluded=0)
    page = section(render_report(layout.data_dir, DATE), "Signals to gemeenten")
    assert "No new signals in this run; 40 held back" in page
    assert f"not delivered ({note})</td><td>40</td>" in page
    assert "cool-down" not in page  # a reason that held back nobody is not listed


def test_without_a_monitoring_file_no_signals_still_says_none(layout):
    page = section(render_report(layout.data_dir, DATE), "Signals to gemeenten")
    assert page.count("<p>none</p>") == 2 and "Held back" not in page


def test_a_hostile_partner_folder_name_is_escaped(tmp_path):
    layout = Layout(tmp_path / "data")
    make_snapshot(layout)
    make_records(layout, partner_folder=HOSTILE, message='"><img src=x onerror=alert(1)>')
    page = render_report(layout.data_dir, DATE, stage_seconds={HOSTILE: 1.0})
    assert "<script" not in page and "<img" not in page
    deliveries = section(page, "Deliveries")
    assert "<td>&lt;script&gt;</td><td>claims</td><td>rejected</td>" in deliveries
    assert "<td>&#34;&gt;&lt;img src=x onerror=alert(1)&gt;</td>" in deliveries
    assert 'text-anchor="end">&lt;script&gt;</text>' in figure(page, "Seconds per stage")


def test_rejected_and_stale_datasets_are_named(layout):
    path = write_report(layout.data_dir, DATE, stage_seconds=PIPELINE_ORDER)
    assert path == layout.report_file(DATE)
    page = path.read_text("utf-8")
    deliveries = section(page, "Deliveries")
    assert "<td>CJIB</td><td>claims</td><td>rejected</td><td>row_count_matches_manifest" in (
        deliveries
    )
    assert f"{MESSAGE}</td><td>4, 7</td>" in deliveries
    assert "<td>BD</td><td>claims</td><td>accepted</td><td>1,234 rows</td>" in deliveries
    assert "<td>stale (carried forward)</td><td>CJIB/claims</td>" in deliveries
    assert "1 datasets accepted" in page and '<span class="bad">1 rejected</span>' in page
    assert figure(page, "Persons in arrears at both partners").count("<rect") == 4


def test_the_templates_ship_with_the_package():
    """Every template file matches a `[tool.setuptools.package-data]` pattern, so a non-editable
    install carries them too."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["pipelines"]
    package = ROOT / "pipelines"
    templates = [p for p in (package / "templates").rglob("*") if p.is_file()]
    assert templates
    for path in templates:
        relative = path.relative_to(package).as_posix()
        assert any(PurePosixPath(relative).match(p) for p in patterns), relative


def test_report_sql_files_state_their_grain_and_bind_parameters():
    files = sorted((SQL_DIR / "report").glob("*.sql"))
    assert files
    for path in files:
        text = path.read_text("utf-8")
        assert text.startswith("-- grain: "), path.name
        assert "{" not in text and "%s" not in text, path.name  # bound as $name, never pasted


# ---------------------------------------------------------------- feedback from gemeenten


# how the "Held back" table names each reason, with the policy's periods (rules-2.yaml)
COOL_DOWN = "cool-down: signalled within the last 180 days, no escalation since"
LONGER_COOL_DOWN = (
    "of which the longer cool-down of 365 days after a gemeente reported no_help_wanted"
)
EXCLUDED = "excluded: in debt assistance"
AFTER_HELP = "of which help reported by a gemeente (within 365 days)"
DECEASED = "deceased: reported by a gemeente, never signalled again"
NOT_RESIDENT = "not resident (held): every gemeente of their claims reported them not resident"
REROUTED = (
    "re-routed after not_resident: signalled to the next gemeente of their claims (information)"
)


def held_back_rows(page: str) -> list[tuple[str, str, str]]:
    """(row class, why, persons) of every row of the "Held back" table."""
    held = page.split("<h3>Held back</h3>", 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="([a-z_]+)"><td>([^<]+)</td><td>([^<]+)</td></tr>', held)


def test_every_held_back_reason_of_the_feedback_is_listed_in_order(layout):
    """The parts ("of which") and the re-routed signals are listed but not added to the
    persons held back: 1,200 + 7 + 3 + 2 = 1,212."""
    make_monitoring(
        layout,
        signals=0,
        suppressed=1200,
        excluded=7,
        feedback={
            "excluded_after_help": 4,
            "suppressed_no_help_wanted": 15,
            "held_deceased": 3,
            "held_not_resident": 2,
            "rerouted": 5,
        },
    )
    page = section(render_report(layout.data_dir, DATE), "Signals to gemeenten")
    assert "No new signals in this run; 1,212 held back" in page
    assert held_back_rows(page) == [
        ("held", COOL_DOWN, "1,200"),
        ("of_which", LONGER_COOL_DOWN, "15"),
        ("held", EXCLUDED, "7"),
        ("of_which", AFTER_HELP, "4"),
        ("held", DECEASED, "3"),
        ("held", NOT_RESIDENT, "2"),
        ("information", REROUTED, "5"),
    ]


def test_a_monitoring_file_from_before_the_feedback_columns_still_reports(layout):
    """A night run before contract 1.6.0 wrote no feedback columns: they count as none."""
    make_monitoring(layout, signals=3, suppressed=2, excluded=0)
    page = section(render_report(layout.data_dir, DATE), "Signals to gemeenten")
    assert held_back_rows(page) == [("held", COOL_DOWN, "2")]


def test_signals_without_any_feedback_say_so_in_one_line(layout):
    with duckdb.connect(str(layout.snapshot)) as con:
        con.execute(
            "insert into signal_funnel by name select $d as as_of, g as gemeente_code, "
            "date '2026-10-01' as month, 12 as signals_sent, 0 as with_identity, "
            "0 as feedback_received, 0 as picked_up, 0 as contact_made, 0 as help_started, "
            "0 as unjustified, 0 as repeats, 0 as not_resident, 0 as deceased "
            "from unnest(['ALL', 'GM0363']) as t (g)",
            {"d": DATE},
        )
        con.execute(
            "insert into signal_funnel by name select as_of, gemeente_code, "
            "date '2026-11-01' as month, 30 as signals_sent, 0 as with_identity, "
            "0 as feedback_received, 0 as picked_up, 0 as contact_made, 0 as help_started, "
            "0 as unjustified, 0 as repeats, 0 as not_resident, 0 as deceased "
            "from signal_funnel"
        )
        con.execute(
            "insert into partner_feedback values ($d, 'BD', date '2026-10-01', 12, 0, 0)",
            {"d": DATE},
        )
    page = section(render_report(layout.data_dir, DATE), "What became of the signals")
    assert page.strip() == (
        '<p class="no-feedback">No feedback from gemeenten yet: none of the 42 signals of '
        "2026-10 to 2026-11 has a status reported back (as of 2026-11-22).</p>"
    )


def test_no_signal_yet_means_no_feedback_either(layout):
    page = section(render_report(layout.data_dir, DATE), "What became of the signals")
    assert page.strip() == '<p class="no-feedback">No feedback from gemeenten yet.</p>'


# The first two run dates of tests/test_feedback.py (D1, and D2 = D1 + 181 days, past the usual
# cool-down), its ten persons (C, P, E, H, N, N2, R, R2, L, L2; see its docstring) and its
# first feedback file, taken in by the D2 run; plus two persons of this module:
#   X   BD 60,000 and DUO 30,000 (BD and DUO qualify, not CJIB): signalled D1 and D2, no feedback
#   A   in debt assistance at BD: excluded on both nights, never signalled
PERSONS = [*FEEDBACK_PERSONS, "X", "A"]


def deliver_with_x_and_a(landing: Path, date: dt.date) -> None:
    """test_feedback's delivery of `date`, with X and A; every partner delivers."""
    bd, cjib, duo = [], [], []
    for person in FEEDBACK_PERSONS:
        if person == "R":  # two claims in GM0363 and one in GM0599: routed to GM0363
            bd += [arrears("R", 30_000), arrears("R", 30_000)]
            cjib.append(arrears("R", 10_000, "GM0599"))
            continue
        bd.append(arrears(person, 200_000 if person == "N2" and date >= D2 else 60_000))
        cjib.append(arrears(person, 10_000))
    bd += [arrears("X", 60_000), {**arrears("A", 60_000), "debt_assistance": "true"}]
    cjib.append(arrears("A", 10_000))
    duo.append(arrears("X", 30_000))
    write_claims_delivery(landing, date, "BD", bd)
    write_claims_delivery(landing, date, "CJIB", cjib)
    write_claims_delivery(landing, date, "DUO", duo)
    deliver_empty_extracts(landing, date)


class ReportHub(Hub):
    """test_feedback's hub, on this module's deliveries."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        secret = load_key_file(self.key, "hub").secret
        self.names = {hub_person_id(secret, pseudonym_of(n)): n for n in PERSONS}

    def run(self, date: dt.date):
        if not (self.data / "landing" / date.isoformat()).is_dir():
            deliver_with_x_and_a(self.data / "landing", date)
        return super().run(date)


@pytest.fixture(scope="module")
def feedback_pages(tmp_path_factory) -> dict[str, str]:
    """The pages the D1 run (no feedback yet) and the D2 run (after the intake) wrote."""
    hub = ReportHub(tmp_path_factory.mktemp("report-feedback"))
    layout = Layout(hub.data)
    assert hub.run(D1).exit_code == 0
    pages = {"D1": layout.report_file(D1).read_text("utf-8")}
    sent = hub.signal_ids(D1)
    assert set(sent) == set(PERSONS) - {"A"}
    hub.send(
        "GM0363",
        "feedback-2025-01-20.csv.p7s",
        first_feedback(sent),
    )
    assert hub.run(D2).exit_code == 0
    pages["D2"] = layout.report_file(D2).read_text("utf-8")
    return pages


def bars(chart: str) -> list[tuple[str, str]]:
    """(label, value as shown) of every bar of a bar chart."""
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', chart)
    values = re.findall(r"<title>[^<]*: ([^<]+)</title>", chart)
    return list(zip(labels, values, strict=True))


def said(chart: str) -> list[tuple[str, str]]:
    """(label, text right of the bar) of every row of a share chart."""
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', chart)
    texts = re.findall(r'<text x="[0-9.]+" y="[0-9.]+">([^<]+)</text>', chart)
    return list(zip(labels, texts, strict=True))


def test_the_night_with_feedback_lists_what_it_held_back_and_why(feedback_pages):
    """D2: C, N2 (escalation), L2 (no_contact changes no rule) and X signalled at GM0363, R
    re-routed to GM0599: 5 signals. Held back: N by the longer cool-down (no_help_wanted, 181
    days ago); H and L (help reported) and A (debt assistance) excluded; P and E deceased; R2
    not resident in its only gemeente: 1 + 3 + 2 + 1 = 7."""
    page = section(feedback_pages["D2"], "Signals to gemeenten")
    assert "No new signals" not in page
    assert held_back_rows(page) == [
        ("held", COOL_DOWN, "1"),
        ("of_which", LONGER_COOL_DOWN, "1"),
        ("held", EXCLUDED, "3"),
        ("of_which", AFTER_HELP, "2"),
        ("held", DECEASED, "2"),
        ("held", NOT_RESIDENT, "1"),
        ("information", REROUTED, "1"),
    ]
    assert bars(figure(page, "Signals by reason")) == [("MULTI_ARREARS", "5"), ("ESCALATION", "1")]


def test_the_funnel_and_the_partner_shares_of_the_feedback(feedback_pages):
    """As of D2, the months 2025-01 (11 signals of D1, every one but X's reported on) and
    2025-07 (5 of D2, none reported on): picked up H, N, N2, L, L2; contact made all but L2
    (no_contact); help started H and L (follow_up_help); not picked up: C unjustified, R and
    R2 not resident, P and E deceased.

    Per partner, the signals in which it qualified: BD every one (11 + 5 = 16), CJIB all but
    X's (10 + 4 = 14), DUO only X's (1 + 1 = 2); picked up: 5 for BD and CJIB, none for DUO
    (X sent no feedback): 5/16 = 31.25 % (rounded half away from zero: 31.3 %), 5/14 = 35.7 %
    and 0.0 %."""
    page = section(feedback_pages["D2"], "What became of the signals")
    assert "No feedback" not in page
    funnel = figure(page, "Funnel: signals of 2025-01 to 2025-07, as of 2025-07-05")
    assert bars(funnel) == [
        ("signals sent", "16"),
        ("with a sealed identity", "0"),
        ("feedback received", "10"),
        ("picked up", "5"),
        ("contact made", "4"),
        ("help started", "2"),
    ]
    assert bars(figure(page, "Not picked up, by status")) == [
        ("unjustified", "1"),
        ("repeat signal", "0"),
        ("not resident", "2"),
        ("deceased", "2"),
    ]
    shares = figure(page, "Picked-up share per partner")
    assert said(shares) == [
        ("BD", "31.3 % picked up (5 of 16 signals)"),
        ("CJIB", "35.7 % picked up (5 of 14 signals)"),
        ("DUO", "0.0 % picked up (0 of 2 signals)"),
    ]
    assert "<title>BD: 1 not picked up</title>" in shares


def test_the_night_before_any_feedback_says_there_is_none(feedback_pages):
    """D1: the 11 signals just sent; A excluded (debt assistance), nothing else held back."""
    page = feedback_pages["D1"]
    assert section(page, "What became of the signals").strip() == (
        '<p class="no-feedback">No feedback from gemeenten yet: none of the 11 signals of '
        "2025-01 has a status reported back (as of 2025-01-05).</p>"
    )
    assert held_back_rows(section(page, "Signals to gemeenten")) == [("held", EXCLUDED, "1")]
