"""Benchmark: what gemeenten' feedback costs the hub at national scale.

A hub whose ledger holds one night of `--signals` signals (by default as many as the national
benchmark night sends, spread over every gemeente by population), and in `feedback/` one signed
file per gemeente with a status for every one of its signals. Timed:

- the intake (`pipelines.feedback.take_in`): verify every file's signature with openssl, parse
  each, check all rows against the `feedback` contract in one Great Expectations run, match them
  with the ledger, append them to the feedback ledger;
- what a night then pays to read the feedback (`pipelines.feedback.effects`: the standing status
  per signal and the effects per person), after one intake and after `--intakes` of them (a
  year of weekly full lists: every signal again, `--changing` of them at a new status), each
  folded into the ledger by the nightly compaction (`pipelines.feedback.compact`, also timed),
  so that any growth with the history shows.

Results: `bench/results/feedback-<date>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from common import BENCH_DATE, RESULTS, machine, write_result
from sealing import gemeente_certificates

from pipelines.feedback import INTAKE_RECORD, ROWS_FILE, compact, effects, take_in
from pipelines.feedback import feedback_files as all_feedback_files
from pipelines.layout import Layout
from pipelines.policy import load_policy
from pipelines.reference import gemeenten
from pipelines.sql import connect

LONG_AGO = dt.date(2000, 1, 1)  # a retention cut that drops nothing: every signal is kept
from privacy.cms import load_certificate, load_private_key, sign

STATUSES = [
    ("picked_up", "follow_up_help"),
    ("picked_up", "no_help_wanted"),
    ("not_picked_up_unjustified", ""),
    ("open", ""),
    ("picked_up", "no_contact"),
    ("not_resident", ""),
    ("deceased", ""),
    ("not_picked_up_repeat", ""),
]


def ledger(data_dir: Path, signals: int, seed: int = 1) -> pl.DataFrame:
    """One delivered night of `signals` signals in the ledger, by gemeente population."""
    codes = np.array([code for code, _, _ in gemeenten()])
    population = np.array([pop for _, _, pop in gemeenten()], dtype=float)
    chosen = np.random.default_rng(seed).choice(
        codes, size=signals, p=population / population.sum()
    )
    frame = pl.DataFrame(
        {
            "run_date": [BENCH_DATE] * signals,
            "signal_id": [f"SIG-{BENCH_DATE:%Y%m%d}-{i:016x}" for i in range(signals)],
            "person_id": [f"{i:032x}" for i in range(signals)],
            "gemeente_code": chosen.tolist(),
            "qualifying_partners": [["BD", "CJIB"]] * signals,
        }
    )
    folder = Layout(data_dir).ledger_date(BENCH_DATE) / "20261122T000000000000Z"
    folder.mkdir(parents=True)
    frame.write_parquet(folder / "signals.parquet")
    (folder / "delivery.json").write_text(json.dumps({"run_date": BENCH_DATE.isoformat()}))
    return frame


def feedback_files(data_dir: Path, frame: pl.DataFrame, keys: Path) -> int:
    """One signed file per gemeente about all its signals; returns the number of files."""
    status_date = BENCH_DATE + dt.timedelta(days=14)
    files = 0
    for (code,), part in frame.group_by("gemeente_code"):
        lines = ["signal_id;status_date;status;result"]
        for index, signal_id in enumerate(part["signal_id"].to_list()):
            status, result = STATUSES[index % len(STATUSES)]
            lines.append(f"{signal_id};{status_date};{status};{result}")
        signed = sign(
            ("\n".join(lines) + "\n").encode(),
            load_certificate(keys / f"{code}.crt"),
            load_private_key(keys / f"{code}.key"),
        )
        target = Layout(data_dir).feedback / code / f"feedback-{status_date}.csv.p7s"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(signed)
        files += 1
    return files


def restate(week_0: Path, target: Path, week: int, share: float) -> None:
    """A later week's full list: every row of week 0 again, with a `share` of the signals (a
    different part each week) at a status reached that week."""
    with connect() as con:
        con.execute(
            "copy (select * replace (case when hash(signal_id, $week) % 1000 < $per_mille "
            "then status_date + to_days(7 * $week) else status_date end as status_date) "
            f"from read_parquet($rows)) to '{target}' (format parquet)",
            {"rows": str(week_0), "week": week, "per_mille": int(share * 1000)},
        )


def ledger_rows(data_dir: Path) -> int:
    with connect() as con:
        files = [str(p) for p in all_feedback_files(data_dir)]
        return con.execute("select count(*) from read_parquet($f)", {"f": files}).fetchall()[0][0]


def timed_effects(data_dir: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        begin = time.perf_counter()
        with connect() as con:
            effects(con, data_dir, BENCH_DATE + dt.timedelta(days=30), load_policy())
            con.table("feedback_effects").count("*").fetchall()
        best = min(best, time.perf_counter() - begin)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=357_779)
    parser.add_argument("--intakes", type=int, default=52)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--changing",
        type=float,
        default=0.1,
        help="share of the signals whose status changes in a week (the rest is re-sent as is)",
    )
    args = parser.parse_args()

    load = round(os.getloadavg()[0], 2)
    codes = [code for code, _, _ in gemeenten()]
    certs = gemeente_certificates(codes)
    keys = certs.parent.parent / "gemeente-side"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        shutil.copytree(certs, data_dir / "certs" / "gemeenten")
        print(f"ledger of {args.signals:,} signals, a signed file per gemeente ...", flush=True)
        frame = ledger(data_dir, args.signals)
        files = feedback_files(data_dir, frame, keys)
        begin = time.perf_counter()
        intake = take_in(data_dir, data_dir / "certs", BENCH_DATE + dt.timedelta(days=15))
        intake_s = time.perf_counter() - begin
        assert not intake.refused and intake.rows == args.signals, intake.refused[:1]
        print(f"  intake of {files} files, {intake.rows:,} rows: {intake_s:.2f} s", flush=True)
        one = timed_effects(data_dir, args.repeat)
        layout = Layout(data_dir)
        shutil.copy(intake.folder / ROWS_FILE, data_dir / "week-0.parquet")  # compaction removes it
        begin = time.perf_counter()
        compact(layout, LONG_AGO)  # what the night's commit does after the intake
        first_compaction = time.perf_counter() - begin
        one_compacted = timed_effects(data_dir, args.repeat)
        nightly = 0.0
        for number in range(1, args.intakes):  # later weekly intakes of the full lists
            later = intake.folder.with_name(f"{intake.folder.name}{number:03d}")
            later.mkdir()
            shutil.copy(intake.folder / INTAKE_RECORD, later / INTAKE_RECORD)
            restate(data_dir / "week-0.parquet", later / ROWS_FILE, number, args.changing)
            begin = time.perf_counter()
            compact(layout, LONG_AGO)
            nightly = time.perf_counter() - begin
        kept_rows = ledger_rows(data_dir)
        many = timed_effects(data_dir, args.repeat)
        print(
            f"  effects: {one:.2f} s after 1 intake, {many:.2f} s after {args.intakes} "
            f"({kept_rows:,} rows); compaction {first_compaction:.2f} s, {nightly:.2f} s a night"
        )

    report = {
        "machine": machine(),
        "load_average_at_start": load,
        "signals": args.signals,
        "files": files,
        "intake_s": round(intake_s, 3),
        "intake_ms_per_file": round(intake_s * 1000 / files, 1),
        "intake_s_per_100k_rows": round(intake_s * 100_000 / args.signals, 3),
        "effects_after_1_intake_s": round(one, 3),
        "compaction_after_1_intake_s": round(first_compaction, 3),
        "effects_after_1_intake_compacted_s": round(one_compacted, 3),
        "intakes": args.intakes,
        "restated_share": args.changing,
        "feedback_rows_taken_in": args.signals * args.intakes,
        "ledger_rows_after_intakes": kept_rows,
        f"compaction_at_intake_{args.intakes}_s": round(nightly, 3),
        f"effects_after_{args.intakes}_intakes_s": round(many, 3),
    }
    path = write_result("feedback", report)
    table = "| measure | value |\n|---|---|\n" + "\n".join(
        f"| {k} | {v} |" for k, v in report.items() if k != "machine"
    )
    (RESULTS / path.name.replace(".json", ".md")).write_text(table + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
