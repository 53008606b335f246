"""Benchmark: validating a national-scale delivery (all datasets) against a plain DuckDB scan.

The baseline reads every data file once with DuckDB in the same CSV dialect, all columns as text,
into memory: the least any validation must do. The measured path is `ingest_date` from
scratch: manifest checks, sha256, strict parse, the GX contract suites inside DuckDB, the leak
guard, and staging as Parquet.
"""

from __future__ import annotations

import argparse
import os
import time

import duckdb
from common import BENCH_DATE, fresh_hub, machine, national_delivery, write_result

from pipelines.ingest import ingest_date
from pipelines.layout import Layout


def scan_seconds(landing) -> float:
    start = time.perf_counter()
    with duckdb.connect() as con:
        for path in sorted(landing.glob("*/*.csv")):
            con.execute(
                "create or replace temp table scanned as select * from read_csv($p, "
                "delim = ';', quote = '\"', header = true, all_varchar = true)",
                {"p": str(path)},
            )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=2_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    root = national_delivery(args.persons)
    landing = Layout(root).landing_date(BENCH_DATE)
    rows = sum(sum(1 for _ in p.open("rb")) - 1 for p in landing.glob("*/*.csv"))

    scan = min(scan_seconds(landing) for _ in range(2))
    fresh_hub(root)
    finished_after = {}
    start = time.perf_counter()

    def tick(outcome) -> None:
        key = f"{outcome.partner}/{outcome.dataset}"
        finished_after[key] = round(time.perf_counter() - start, 2)
        print(f"  {outcome.summary()} (done after {finished_after[key]} s)", flush=True)

    outcomes = ingest_date(BENCH_DATE, data_dir=root, on_dataset=tick, workers=args.workers)
    total = time.perf_counter() - start
    assert all(o.status == "accepted" for o in outcomes), [o.summary() for o in outcomes]

    report = {
        "machine": machine(),
        "persons": args.persons,
        "rows": rows,
        "datasets": len(outcomes),
        "workers": args.workers,
        "duckdb_scan_s": round(scan, 2),
        "ingest_s": round(total, 2),
        "ratio_to_scan": round(total / scan, 1),
        "finished_after_s": finished_after,
    }
    path = write_result(f"ingest-{args.persons}", report)
    print(
        f"ingest of {rows:,} rows: {total:.1f} s, DuckDB scan {scan:.1f} s, "
        f"ratio {total / scan:.1f}x, {args.workers} worker(s) -> {path}",
        flush=True,
    )


if __name__ == "__main__":
    main()
