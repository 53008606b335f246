"""The run report: `reports/<date>/index.html`, one self-contained page a person reads at a glance.

Deliveries accepted and rejected (with the rule and remedy), the overlap heatmap (partner x
partner), persons by number of agencies, plan outcomes, signals per gemeente (top 20) and per
reason, persistence, stage timings, and the contract results (the Great Expectations validation
results kept under `reports/<date>/validation/`). Charts are inline SVG and the CSS is inline, so
the file opens from disk with no network. Everything comes from the published snapshot and the
run's own records: pseudonymised counts only, never a person id or a pseudonym.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import duckdb

from pipelines.fileio import replace_atomically, temporary_sibling
from pipelines.publish import snapshot_path
from pipelines.reference import gemeenten

PALETTE = "#1f5fa8"
REJECTED = "#b3261e"


def _esc(value: object) -> str:
    return html.escape(str(value))


def bar_chart(
    items: list[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    color: str = PALETTE,
    width: int = 640,
    label_w: int = 170,
) -> str:
    """Horizontal bars as inline SVG; labels left, values right."""
    if not items:
        return f"<figure><figcaption>{_esc(title)}</figcaption><p>none</p></figure>"
    row, value_w = 22, 90
    height = row * len(items) + 10
    top = max(v for _, v in items) or 1
    bars = []
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        length = (width - label_w - value_w) * value / top
        shown = (
            f"{value:,.1f}"
            if isinstance(value, float) and not value.is_integer()
            else f"{int(value):,}"
        )
        bars.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_esc(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" '
            f'fill="{color}"><title>{_esc(label)}: {shown}{_esc(unit)}</title></rect>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + 15}">{shown}{_esc(unit)}</text>'
        )
    return (
        f"<figure><figcaption>{_esc(title)}</figcaption>"
        f'<svg class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="{_esc(title)}">{"".join(bars)}</svg></figure>'
    )


def heatmap(labels: list[str], cells: dict[tuple[str, str], int], *, title: str) -> str:
    """A symmetric partner x partner matrix as inline SVG, darker for more persons."""
    size, margin = 58, 60
    width = margin + size * len(labels) + 10
    top = max(cells.values(), default=0) or 1
    parts = []
    for j, label in enumerate(labels):
        parts.append(
            f'<text x="{margin + j * size + size / 2}" y="{margin - 10}" '
            f'text-anchor="middle">{_esc(label)}</text>'
        )
    for i, row_label in enumerate(labels):
        y = margin + i * size
        parts.append(
            f'<text x="{margin - 8}" y="{y + size / 2 + 5}" text-anchor="end">'
            f"{_esc(row_label)}</text>"
        )
        for j, col_label in enumerate(labels):
            x = margin + j * size
            if i == j:
                parts.append(
                    f'<rect x="{x}" y="{y}" width="{size - 2}" height="{size - 2}" fill="#eee"/>'
                )
                continue
            value = cells.get((row_label, col_label), cells.get((col_label, row_label), 0))
            shade = 0.08 + 0.92 * value / top
            ink = "#fff" if shade > 0.55 else "#222"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{size - 2}" height="{size - 2}" fill="{PALETTE}" '
                f'fill-opacity="{shade:.2f}"><title>{_esc(row_label)} + {_esc(col_label)}: '
                f'{value:,}</title></rect><text x="{x + size / 2 - 1}" y="{y + size / 2 + 4}" '
                f'text-anchor="middle" fill="{ink}" font-size="11">{value:,}</text>'
            )
    return (
        f'<figure><figcaption>{_esc(title)}</figcaption><svg class="chart heatmap" '
        f'width="{width}" height="{width}" role="img" aria-label="{_esc(title)}">'
        f"{''.join(parts)}</svg></figure>"
    )


def _table(headers: list[str], rows: list[list[object]], *, css: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _deliveries(data_dir: Path, run_date: dt.date) -> tuple[str, int, int]:
    staged = sorted((data_dir / "staging" / run_date.isoformat()).glob("*/*.receipt.json"))
    accepted = [json.loads(p.read_text("utf-8")) for p in staged]
    reasons = [
        json.loads(p.read_text("utf-8"))
        for p in sorted((data_dir / "quarantine" / run_date.isoformat()).glob("*/*/reason.json"))
        if not p.parent.name.startswith(".")  # half-way after a kill: finished next run
    ]
    rows = [
        [r["partner"], r["dataset"], "accepted", f"{r['rows']:,} rows", "", ""] for r in accepted
    ]
    rows += [
        [
            r["partner"],
            r["dataset"],
            "rejected",
            r["rule"],
            r["message"],
            ", ".join(map(str, r["example_lines"])),
        ]
        for r in reasons
    ]
    return (
        _table(
            ["partner", "dataset", "result", "rows / rule", "why", "example lines"],
            rows,
            css="deliveries",
        ),
        len(accepted),
        len(reasons),
    )


def _contract_results(data_dir: Path, run_date: dt.date) -> str:
    found = sorted((data_dir / "reports" / run_date.isoformat() / "validation").glob("*.json"))
    found += sorted((data_dir / "quarantine" / run_date.isoformat()).glob("*/*/validation.json"))
    rows = []
    for path in found:
        result = json.loads(path.read_text("utf-8"))
        checks = result.get("results", [])
        failed = [c for c in checks if not c.get("success")]
        failed_names = ", ".join(
            (c.get("expectation_config", {}).get("meta") or {}).get("rule", "?") for c in failed
        )
        label = (
            path.stem
            if path.name != "validation.json"
            else f"{path.parent.parent.name}-{path.parent.name} (quarantined)"
        )
        rows.append(
            [label, len(checks), len(checks) - len(failed), len(failed), failed_names or "-"]
        )
    return _table(["dataset", "rules", "passed", "failed", "failed rules"], rows, css="contracts")


def _night_status(night: tuple | None) -> str:
    """Carried-forward, left-out and unchanged datasets, and whether signals went out."""
    if night is None:
        return ""
    unchanged, stale, left_out, delivered, note = night
    rows = [["stale (carried forward)", item] for item in stale]
    rows += [["left out (beyond max_staleness_days)", item] for item in left_out]
    rows += [["unchanged (same bytes as before)", item] for item in unchanged]
    status = (
        "<p>Signal files delivered.</p>"
        if delivered
        else f'<p class="bad">Signal files not delivered: {_esc(note or "")}</p>'
    )
    return status + (_table(["status", "dataset"], rows, css="night") if rows else "")


def write_report(
    data_dir: Path, run_date: dt.date, *, stage_seconds: dict[str, float] | None = None
) -> Path:
    """Render `reports/<date>/index.html` from the snapshot and the run's records."""
    data_dir = Path(data_dir)
    names = {code: name for code, name, _ in gemeenten()}
    with duckdb.connect(str(snapshot_path(data_dir)), read_only=True) as con:

        def rows(sql: str) -> list[tuple]:
            return con.execute(sql, {"d": run_date}).fetchall()

        counts = rows(
            "select n_partners, persons from overlap_counts where run_date = $d order by n_partners"
        )
        pairs = rows("select partner_a, partner_b, persons from overlap_pairs where run_date = $d")
        outcomes = rows(
            "select outcome, count(*) from plan_proposals where run_date = $d "
            "group by all order by 2 desc"
        )
        per_gemeente = rows(
            "select gemeente_code, count(*) from signals where run_date = $d "
            "group by all order by 2 desc, 1 limit 20"
        )
        per_reason = rows(
            "select reason, count(*) from signals, "
            "unnest(string_split(reasons, '|')) as t(reason) "
            "where run_date = $d group by all order by 2 desc"
        )
        persistence = rows(
            "select persistence_runs, count(*) from persons where run_date = $d "
            "and n_partners >= 2 group by all order by 1"
        )
        run = rows("select claims, persons from runs where run_date = $d")
        night = rows(
            "select datasets_unchanged, datasets_stale, partners_left_out, signals_delivered, "
            "delivery_note from runs where run_date = $d"
        )
        partners = [
            p for (p,) in rows("select distinct partner from claims where run_date = $d order by 1")
        ]
    deliveries, accepted, rejected = _deliveries(data_dir, run_date)
    claims, persons = run[0] if run else (0, 0)
    multi = sum(n for k, n in counts if k >= 2)
    body = [
        f"<h1>cri-overlap run {run_date.isoformat()}</h1>",
        f'<p class="summary">{accepted} datasets accepted, '
        f'<span class="{"bad" if rejected else ""}">{rejected} rejected</span>; '
        f"{claims:,} claims of {persons:,} persons; {multi:,} persons in arrears at two or more "
        f"partners. Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Pseudonymised "
        "counts only.</p>",
        "<h2>Deliveries</h2>",
        deliveries,
        _night_status(night[0] if night else None),
        "<h2>Overlap</h2>",
        heatmap(
            partners, {(a, b): n for a, b, n in pairs}, title="Persons in arrears at both partners"
        ),
        bar_chart(
            [(f"{k} partner{'s' if k > 1 else ''}", n) for k, n in counts if n],
            title="Persons by number of partners with arrears",
        ),
        bar_chart(
            [(f"{k} run{'s' if k > 1 else ''}", n) for k, n in persistence],
            title="Persistence: consecutive runs at 2+ partners",
        ),
        "<h2>Joint payment plans</h2>",
        bar_chart([(o, n) for o, n in outcomes], title="Plan proposals by outcome"),
        "<h2>Signals to gemeenten</h2>",
        bar_chart([(r, n) for r, n in per_reason], title="Signals by reason"),
        bar_chart(
            [(f"{names.get(g, g)} ({g})", n) for g, n in per_gemeente],
            title="Signals per gemeente (top 20)",
            width=820,
            label_w=260,
        ),
        "<h2>Stage timings</h2>",
        bar_chart(
            sorted((stage_seconds or {}).items(), key=lambda kv: -kv[1]),
            title="Seconds per stage",
            unit=" s",
        ),
        "<h2>Contract results</h2>",
        "<p>Great Expectations validation of each delivered dataset against its contract "
        "(full results as JSON next to this page, under <code>validation/</code>).</p>",
        _contract_results(data_dir, run_date),
    ]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>cri-overlap run {run_date.isoformat()}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }}
h1 {{ font-size: 1.6em; }} h2 {{ margin-top: 1.8em; border-bottom: 1px solid #ddd; }}
figure {{ margin: 1em 0; }} figcaption {{ font-weight: 600; margin-bottom: .3em; }}
svg.chart text {{ font-size: 12px; fill: #222; }}
table {{ border-collapse: collapse; margin: .5em 0; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f6f8; }} .bad {{ color: {REJECTED}; font-weight: 600; }}
</style></head><body>
{"".join(body)}
</body></html>
"""
    target = data_dir / "reports" / run_date.isoformat() / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target)
    temporary.write_text(page, "utf-8")
    return replace_atomically(temporary, target)
