"""The run report: `reports/<date>/index.html`, one self-contained page a person reads at a glance.

Deliveries accepted and rejected (with the rule and remedy), the overlap heatmap (partner x
partner), persons by number of agencies, plan outcomes, signals per gemeente (top 20) and per
reason, the signals held back and why (cool-down, exclusion, and what gemeenten reported back:
deceased, not resident, help, no help wanted; rules.md section 5), what became of the signals
(the national funnel and each partner's picked-up share, from the gemeenten's feedback),
persistence, stage timings in pipeline order, and the contract results (the Great Expectations
validation results kept under `reports/<date>/validation/`). Charts are inline SVG and the CSS
is inline, so the file opens from disk with no network. Everything comes from the published
snapshot and the run's own records: pseudonymised counts only, never a person id, a pseudonym
or what a gemeente reported about one signal.

This module only gathers plain data: the queries are `sql/report/*.sql`, the page and each chart
are Jinja2 templates under `pipelines/templates/` (autoescaped, so a partner's folder name or a
rule's message can never become markup).
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from pipelines.fileio import replace_atomically, temporary_sibling
from pipelines.layout import Layout
from pipelines.policy import load_policy
from pipelines.records import (
    DELIVERY_RECORD,
    REASON,
    RECEIPT_SUFFIX,
    VALIDATION_RESULT,
    read_json,
)
from pipelines.reference import gemeenten
from pipelines.sql import attach_read_only, connect, parquet_view, query

PALETTE = "#1f5fa8"
REJECTED = "#b3261e"
TEMPLATE = "report.html.j2"
MONITORING_FILE = "signal_monitoring.parquet"  # written by the signals stage into linked/<date>/


def number(value: float) -> str:
    """`12,345` for counts, `1.5` for a fraction: how every figure on the page is written."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


@cache
def environment() -> jinja2.Environment:
    """The templates ship inside the package (package-data), so an installed copy finds them
    too; undefined names fail loudly instead of rendering as empty text."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["number"] = number
    env.globals.update(PALETTE=PALETTE, REJECTED=REJECTED)
    return env


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n > 1 else ''}"


def _lines(reason: dict[str, Any]) -> str:
    """The example line numbers of a rejection (never a value from the file)."""
    return ", ".join(map(str, reason["example_lines"]))


def _deliveries(layout: Layout, run_date: dt.date) -> tuple[list[list[object]], int, int]:
    """One row per dataset: accepted from its receipt, rejected from its reason record."""
    staged = sorted(layout.staging_date(run_date).glob(f"*/*{RECEIPT_SUFFIX}"))
    accepted = [read_json(p) for p in staged]
    reasons = [
        read_json(p)
        for p in sorted(layout.quarantine_date(run_date).glob(f"*/*/{REASON}"))
        if not p.parent.name.startswith(".")  # half-way after a kill: finished next run
    ]
    rows: list[list[object]] = [
        [r["partner"], r["dataset"], "accepted", f"{r['rows']:,} rows", "", ""] for r in accepted
    ]
    rows += [
        [r["partner"], r["dataset"], "rejected", r["rule"], r["message"], _lines(r)]
        for r in reasons
    ]
    return rows, len(accepted), len(reasons)


def _contract_row(path: Path) -> list[object]:
    """Rules, passed, failed and the failed rules' names of one validation result."""
    checks = read_json(path).get("results", [])
    failed = [c for c in checks if not c.get("success")]
    failed_names = ", ".join(
        (c.get("expectation_config", {}).get("meta") or {}).get("rule", "?") for c in failed
    )
    label = (
        path.stem
        if path.name != VALIDATION_RESULT
        else f"{path.parent.parent.name}-{path.parent.name} (quarantined)"
    )
    return [label, len(checks), len(checks) - len(failed), len(failed), failed_names or "-"]


def _contract_results(layout: Layout, run_date: dt.date) -> list[list[object]]:
    """The accepted datasets' results, then those kept next to a quarantined delivery."""
    found = sorted(layout.validation_date(run_date).glob("*.json"))
    found += sorted(layout.quarantine_date(run_date).glob(f"*/*/{VALIDATION_RESULT}"))
    return [_contract_row(path) for path in found]


def _night(run: tuple | None) -> dict[str, Any] | None:
    """Carried-forward, left-out and unchanged datasets, and whether signals went out."""
    if run is None:
        return None
    _claims, _persons, unchanged, stale, left_out, delivered, note = run
    rows = [["stale (carried forward)", item] for item in stale]
    rows += [["left out (beyond max_staleness_days)", item] for item in left_out]
    rows += [["unchanged (same bytes as before)", item] for item in unchanged]
    return {"delivered": delivered, "note": note, "rows": rows}


def _identities(layout: Layout, run_date: dt.date) -> list[int] | None:
    """[signals, with a sealed identity] over the gemeenten of the night's delivery record."""
    record = layout.outbox_date(run_date) / DELIVERY_RECORD
    counts = read_json(record).get("identities") if record.is_file() else None
    if not counts:
        return None
    return [sum(n for n, _ in counts.values()), sum(m for _, m in counts.values())]


def _held_back(con: Any, layout: Layout, run_date: dt.date) -> list[tuple[str, str, int]]:
    """(reason, kind, persons) the run did not signal, with the parts of a reason ('of_which')
    and the re-routed signals ('information'): from the run's own monitoring file, since the
    snapshot keeps the monitoring of delivered nights only (and a night not delivered is held
    back whole). None known without that file."""
    monitoring = layout.linked_date(run_date) / MONITORING_FILE
    if not monitoring.is_file():
        return []
    parameters = {"run_date": run_date, "monitoring_file": str(monitoring)}
    return [(r, k, int(n)) for r, k, n in query(con, "report/held_back", parameters).fetchall()]


# (column of signal_funnel, label): the funnel narrows in this order (the contract's
# funnel_narrows rule); the not-picked-up statuses are a breakdown beside it, not a step
FUNNEL = (
    ("signals_sent", "signals sent"),
    ("with_identity", "with a sealed identity"),
    ("feedback_received", "feedback received"),
    ("picked_up", "picked up"),
    ("contact_made", "contact made"),
    ("help_started", "help started"),
)
NOT_PICKED_UP = (
    ("unjustified", "unjustified"),
    ("repeats", "repeat signal"),
    ("not_resident", "not resident"),
    ("deceased", "deceased"),
)


def _month(value: dt.date | None) -> str:
    return f"{value:%Y-%m}" if value else ""


def _feedback(con: Any) -> dict[str, Any]:
    """What became of the signals, from the snapshot's own tables (as of its newest run date,
    which is not always the report's date: a date run late reports the newest picture): the
    national funnel summed over the months, and per partner the picked-up share. `received` is
    False while no gemeente has reported on any signal, so the page says so instead of drawing
    charts of zeros."""
    as_of, first, last, *counts = query(con, "report/signal_funnel").fetchone()
    columns = [column for column, _ in (*FUNNEL, *NOT_PICKED_UP)]
    national = {column: int(n) for column, n in zip(columns, counts, strict=True)}
    partners = [
        (partner, int(signals), int(picked_up), int(not_picked_up), percent)
        for partner, signals, picked_up, not_picked_up, percent in query(
            con, "report/partner_feedback"
        ).fetchall()
    ]
    return {
        "received": national["feedback_received"] > 0,
        "as_of": as_of.isoformat() if as_of else "",
        "months": _month(first) if first == last else f"{_month(first)} to {_month(last)}",
        "signals": national["signals_sent"],
        "funnel": [(label, national[column]) for column, label in FUNNEL],
        "not_picked_up": [(label, national[column]) for column, label in NOT_PICKED_UP],
        "partners": partners,
    }


TONIGHT_FROM_LINKED = ("persons", "claims", "plan_proposals")


def _from_snapshot(layout: Layout, run_date: dt.date) -> dict[str, Any]:
    """Every figure the page takes from the analysts' snapshot, as plain (label, value) data."""
    names = {code: name for code, name, _ in gemeenten()}
    with connect() as con:
        attach_read_only(con, layout.snapshot, "snapshot")
        # tonight's per-person tables straight from linked/: through the snapshot's views they
        # would be rebuilt from the whole change-only history (pipelines.history)
        for table in TONIGHT_FROM_LINKED:
            path = layout.linked_date(run_date) / f"{table}.parquet"
            if path.is_file():
                parquet_view(con, table, [path])
        con.execute("set search_path = 'memory.main,snapshot.main'")

        def rows(name: str) -> list[tuple]:
            return query(con, f"report/{name}", {"run_date": run_date}).fetchall()

        counts, run = rows("overlap_counts"), rows("run")
        facts = {
            "partners": [p for (p,) in rows("partners")],
            "pairs": {(a, b): n for a, b, n in rows("overlap_pairs")},
            "by_partners": [(_plural(k, "partner"), n) for k, n in counts if n],
            "persistence": [(_plural(k, "run"), n) for k, n in rows("persistence")],
            "plan_outcomes": rows("plan_outcomes"),
            "signals_by_reason": rows("signals_per_reason"),
            "signals_by_gemeente": [
                (f"{names.get(g, g)} ({g})", n) for g, n in rows("signals_per_gemeente")
            ],
            "held_back": _held_back(con, layout, run_date),
            "feedback": _feedback(con),
        }
    claims, persons = run[0][:2] if run else (0, 0)
    multi = sum(n for k, n in counts if k >= 2)
    return {**facts, "claims": claims, "persons": persons, "multi": multi, "run": run}


def _policy_days() -> dict[str, int]:
    """The periods the held-back reasons name (rules.md sections 4 and 5), from the policy."""
    policy = load_policy()
    return {
        "cooldown": int(policy["signals"]["cooldown_days"]),
        "feedback_cooldown": int(policy["feedback"]["cooldown_days"]),
        "exclusion": int(policy["feedback"]["exclusion_days"]),
    }


def render_report(
    data_dir: Path, run_date: dt.date, *, stage_seconds: dict[str, float] | None = None
) -> str:
    """The page's HTML. Stage timings stay in the order given (the pipeline's), never by size."""
    layout = Layout(data_dir)
    facts = _from_snapshot(layout, run_date)
    run = facts.pop("run")
    deliveries, accepted, rejected = _deliveries(layout, run_date)
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            **facts,
            run_date=run_date.isoformat(),
            generated=f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}",
            deliveries=deliveries,
            accepted=accepted,
            rejected=rejected,
            night=_night(run[0] if run else None),
            days=_policy_days(),
            stage_seconds=list((stage_seconds or {}).items()),
            contracts=_contract_results(layout, run_date),
            identities=_identities(layout, run_date),
        )
    )


def write_report(
    data_dir: Path, run_date: dt.date, *, stage_seconds: dict[str, float] | None = None
) -> Path:
    """Render `reports/<date>/index.html` from the snapshot and the run's records; written
    atomically, so a reader never opens half a page."""
    page = render_report(data_dir, run_date, stage_seconds=stage_seconds)
    target = Layout(data_dir).report_file(run_date)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target)
    temporary.write_text(page, "utf-8")
    return replace_atomically(temporary, target)
