"""Benchmark: night after night. Does night N cost what night 2 costs (issue 14)?

For a population of `--persons`, `--nights` consecutive nights on one data directory. The
population changes a little each night: of the first delivery's claims, a fresh random 0.5% is
missing each night (paid off, or not yet due again) and a fresh random 1% owes half its arrears,
so about 3% of the claims differ from one night to the next; Toeslagen's income file is
delivered unchanged.

Nights 1, 2 and N are real runs of everything, from partner files in the landing zone. The
nights between are built quickly, as the issue allows: their staged datasets are made from
night 2's staged Parquet (the same changes, applied there) instead of being ingested from CSV,
because contract validation of a delivery costs the same on any night and would make a 400-night
history take hours; link, plans, signals, publish and report run for real on every night, so
the history they leave (linked/, ledger/, outbox/, warehouse/, reports/) is the real one.

Per night: seconds per stage, the size of each folder of the data directory (hard links counted
once) and of the snapshot. Results: `bench/results/history-<persons>-<date>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
from common import BENCH_DATE, DATA, RESULTS, machine, national_delivery, write_result

from pipelines.layout import Layout
from pipelines.records import read_receipt, receipt_path, write_record
from pipelines.run import run_night
from privacy.keys import new_key, write_key_file

STAGES = ("ingest", "link", "plans", "signals", "publish", "report")
# Sealed identities are left out of the history (their values are bound to their extract date,
# so a night cannot be made from night 2's; `bench/night.py` measures them): claims and income.
HISTORY_DATASETS = ("claims", "income")
MISSING, HALVED = 0.005, 0.01


def _masks(rows: int, date: dt.date, partner: str) -> tuple[np.ndarray, np.ndarray]:
    seed = int(hashlib.sha256(f"{date}/{partner}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    return rng.random(rows) >= MISSING, rng.random(rows) < HALVED


def evolve(frame: pl.DataFrame, date: dt.date, partner: str, shift: int) -> pl.DataFrame:
    """The night's version of a claims frame (typed or text): some claims missing, some with
    half their arrears (at least one cent, so that arrears_since stays required). The nights
    lie before today (a run of a later date is refused) and the generated delivery is of
    BENCH_DATE: arrears dates move back by `shift` days (the same every night, so that a claim
    is the same claim from night to night), to before the first night."""
    since = frame["arrears_since"]
    as_date = since.str.to_date() if since.dtype == pl.String else since
    moved = as_date + pl.duration(days=shift)
    frame = frame.with_columns(
        (moved.dt.strftime("%Y-%m-%d") if since.dtype == pl.String else moved).alias(
            "arrears_since"
        )
    )
    keep, halve = _masks(frame.height, date, partner)
    arrears = frame["arrears_cents"].cast(pl.Int64)
    halved = pl.Series(halve) & (arrears > 1)
    new = pl.when(halved).then(arrears // 2).otherwise(arrears)
    frame = frame.with_columns(new.cast(frame.schema["arrears_cents"]).alias("arrears_cents"))
    return frame.filter(pl.Series(keep))


def deliver_night(base: Path, landing: Path, date: dt.date, shift: int) -> None:
    """Partner files for `date` in the landing zone, evolved from the first delivery."""
    for partner_dir in sorted(base.iterdir()):
        target = landing / date.isoformat() / partner_dir.name
        target.mkdir(parents=True, exist_ok=True)
        for manifest_path in partner_dir.glob("*.manifest.json"):
            manifest = json.loads(manifest_path.read_text())
            if manifest["contract"] not in HISTORY_DATASETS:
                continue
            source = partner_dir / manifest["file"]
            data = target / manifest["file"]
            if manifest["contract"] == "claims":
                frame = pl.read_csv(source, separator=";", infer_schema=False)
                frame = evolve(frame, date, partner_dir.name, shift)
                frame.write_csv(data, separator=";", null_value="")
                manifest["row_count"] = frame.height
            else:  # income: the month of the night (the same bytes all month)
                frame = pl.read_csv(source, separator=";", infer_schema=False)
                month = date.replace(day=1).isoformat()
                frame = frame.with_columns(pl.lit(month).alias("income_month"))
                frame.write_csv(data, separator=";", null_value="")
            manifest["extract_date"] = date.isoformat()
            manifest["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
            (target / manifest_path.name).write_text(json.dumps(manifest))


def keep_template(layout: Layout, date: dt.date, template: Path) -> None:
    """A copy of night 2's staged datasets outside the data directory (the hub evicts its own
    after `history.full_copies_days`)."""
    shutil.rmtree(template, ignore_errors=True)
    shutil.copytree(layout.staging_date(date), template)


def stage_night_quickly(layout: Layout, template: Path, date: dt.date, shift: int) -> None:
    """Staged datasets for `date` made from the template's (see the module docstring)."""
    for staged in sorted(template.glob("*/*.parquet")):
        partner, dataset = staged.parent.name, staged.stem
        if dataset not in HISTORY_DATASETS:
            continue
        target = layout.staging_date(date) / partner / staged.name
        target.parent.mkdir(parents=True, exist_ok=True)
        receipt = read_receipt(receipt_path(staged))
        if dataset == "claims":
            frame = evolve(pl.read_parquet(staged), date, partner, 0)  # moved on night 2
            frame.write_parquet(target)
            receipt["rows"] = frame.height
            receipt["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
            receipt["unchanged_since"] = None
        else:
            os.link(staged, target)
            receipt["unchanged_since"] = receipt.get("unchanged_since") or receipt["extract_date"]
        receipt["extract_date"] = date.isoformat()
        receipt["staged_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        write_record(receipt_path(target), receipt)


def sizes(layout: Layout) -> dict[str, int]:
    """Bytes per top-level folder of the data directory, each inode counted once."""
    seen: set[int] = set()
    result = {}
    for root in sorted(p for p in layout.data_dir.iterdir() if p.is_dir()):
        total = 0
        for folder, _, files in os.walk(root):
            for name in files:
                status = os.lstat(os.path.join(folder, name))
                if status.st_ino not in seen:
                    seen.add(status.st_ino)
                    total += status.st_blocks * 512
        result[root.name] = total
    return result


def history(persons: int, nights: int, measure_every: int) -> dict:
    base_root = national_delivery(persons)
    base = Layout(base_root).landing_date(BENCH_DATE)
    root = DATA / f"history-{persons}"
    shutil.rmtree(root, ignore_errors=True)
    layout = Layout(root)
    key = layout.demo_key("hub")
    write_key_file(new_key("hub"), key)
    last = dt.date.today() - dt.timedelta(days=1)
    dates = [last - dt.timedelta(days=nights - i) for i in range(1, nights + 1)]
    real = {1, 2, nights}
    shift = (dates[0] - BENCH_DATE).days
    template = DATA / f"history-{persons}-template"
    results = []
    progress = RESULTS / f"history-{persons}-progress.jsonl"
    progress.unlink(missing_ok=True)
    for number, date in enumerate(dates, start=1):
        if number in real:
            deliver_night(base, layout.landing, date, shift)
        else:
            stage_night_quickly(layout, template, date, shift)
        start = time.perf_counter()
        night = run_night(date, data_dir=root, hub_key_path=key)
        row = {
            "night": number,
            "date": date.isoformat(),
            "real": number in real,
            "total_s": round(time.perf_counter() - start, 2),
            "stages_s": night.seconds,
            "exit_code": night.exit_code,
            "signals": night.signals.signals if night.signals else None,
        }
        if number in real or number % measure_every == 0:
            row["bytes"] = sizes(layout)
            row["snapshot_bytes"] = layout.snapshot.stat().st_size
        results.append(row)
        if number == 2:
            keep_template(layout, date, template)
        with progress.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(
            f"night {number}/{nights} {date}: {row['total_s']} s "
            + " ".join(f"{s} {night.seconds.get(s, 0)}" for s in STAGES),
            flush=True,
        )
    return {"persons": persons, "nights": nights, "per_night": results}


def _after_ingest(row: dict) -> float:
    return sum(v for k, v in row["stages_s"].items() if k != "ingest")


def _medians(rows: list[dict]) -> str:
    """One night is one sample on a shared machine: the medians of the first and the last ten
    quick nights say the same more robustly (link to report, the stages a quick night runs)."""
    quick = [r for r in rows if not r["real"]]
    if len(quick) < 20:
        return "Too few quick nights for medians."
    first = float(np.median([_after_ingest(r) for r in quick[:10]]))
    last = float(np.median([_after_ingest(r) for r in quick[-10:]]))
    return (
        f"Median seconds after ingest, quick nights {quick[0]['night']}-{quick[9]['night']}: "
        f"{first:.2f}; nights {quick[-10]['night']}-{quick[-1]['night']}: {last:.2f} "
        f"({last / first:.2f}x)."
    )


def markdown(result: dict, info: dict) -> str:
    rows = result["per_night"]
    two, last = rows[1], rows[-1]
    derived = ("staging", "linked", "outbox", "ledger", "warehouse", "reports")

    def mb(row: dict, names: tuple[str, ...]) -> str:
        return f"{sum(row['bytes'].get(n, 0) for n in names) / 2**20:,.1f}"

    lines = [
        f"{result['persons']:,} persons, {result['nights']} nights. Machine: {info['cpus']} "
        f"cores, {info['memory_gb']} GB, DuckDB {info['duckdb']}.",
        "",
        f"Night {last['night']} against night 2 (both real runs): "
        f"{last['total_s']:.1f} s against {two['total_s']:.1f} s "
        f"({last['total_s'] / two['total_s']:.2f}x); after ingest "
        f"{_after_ingest(last):.1f} s against {_after_ingest(two):.1f} s.",
        "",
        _medians(rows),
        "",
        "| night | real | total s | "
        + " | ".join(f"{s} s" for s in STAGES)
        + " | derived MB | landing MB | snapshot KB |",
        "|" + "---|" * (4 + len(STAGES) + 2),
    ]
    for row in rows:
        if "bytes" not in row:
            continue
        stages = " | ".join(f"{row['stages_s'].get(s, 0):.2f}" for s in STAGES)
        lines.append(
            f"| {row['night']} | {'yes' if row['real'] else 'quick'} | {row['total_s']:.1f} | "
            f"{stages} | {mb(row, derived)} | {mb(row, ('landing',))} | "
            f"{row['snapshot_bytes'] / 1024:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--nights", type=int, default=400)
    parser.add_argument("--measure-every", type=int, default=25, help="sizes every N nights")
    args = parser.parse_args()
    result = history(args.persons, args.nights, args.measure_every)
    info = machine()
    path = write_result(f"history-{args.persons}", {"machine": info, **result})
    table = markdown(result, info)
    (RESULTS / path.name.replace(".json", ".md")).write_text(table)
    print(table, flush=True)


if __name__ == "__main__":
    main()
