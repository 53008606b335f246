"""Benchmark: keyed hashing of 1,000,000 BSNs, plain Python `hmac` loop vs the project's path.

Both sides get the same 1,000,000 normalised BSN strings in memory and produce the same
1,000,000 lower-case hex pseudonyms (checked equal). A third figure times the whole partner tool
(`pseudonymise_extract`: read CSV, elfproef, HMAC, write CSV + manifest) on a 1,000,000-row raw
extract. Each timing is the best of `--repeat` runs, since this machine is shared and noisy.
Results go to `bench/results/hashing-<date>.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.pseudonymise import pseudonymise_extract
from privacy.hashing import hmac_sql, hmac_sql_parameters
from privacy.keys import new_key
from tests.helpers import make_valid_bsn, raw_claims_frame, write_raw_csv

RESULTS = Path(__file__).resolve().parent / "results"


def best_of(repeat: int, work) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = work()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    key = new_key("linkage")
    rnd = random.Random(1)
    bsns = [make_valid_bsn(rnd) for _ in range(args.rows)]

    def python_loop() -> list[str]:
        return [hmac.new(key.secret, b.encode(), hashlib.sha256).hexdigest() for b in bsns]

    con = duckdb.connect()
    con.register("bsns", pa.table({"bsn9": bsns}))
    query = f"select {hmac_sql('encode(bsn9)')} as person_pseudonym from bsns"
    params = hmac_sql_parameters(key.secret)

    def duckdb_path() -> pa.Table:
        # The result stays columnar (Arrow), as it does when the tool writes it to a file.
        return con.sql(query, params=params).to_arrow_table()

    loop_s, expected = best_of(args.repeat, python_loop)
    duck_s, got = best_of(args.repeat, duckdb_path)
    assert got.column(0).to_pylist() == expected, "DuckDB HMAC differs from Python hmac"

    with tempfile.TemporaryDirectory() as tmp:
        raw = write_raw_csv(raw_claims_frame(bsns), Path(tmp) / "raw" / "claims.csv")
        tool_s, result = best_of(
            args.repeat,
            lambda: pseudonymise_extract(
                raw, Path(tmp) / "out", key=key, partner="CJIB", extract_date=dt.date.today()
            ),
        )
        assert result.rows_written == args.rows

    report = {
        "date": dt.date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "duckdb": duckdb.__version__,
        },
        "rows": args.rows,
        "python_hmac_loop_s": round(loop_s, 3),
        "duckdb_hmac_s": round(duck_s, 3),
        "speedup": round(loop_s / duck_s, 2),
        "pseudonymise_tool_end_to_end_s": round(tool_s, 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"hashing-{report['date']}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
