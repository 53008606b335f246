"""Benchmark: what sealed identities cost the partner tool, per million rows.

The partner tool (`pseudonymise_extract`) runs on one raw claims extract of `--rows` synthetic
valid BSNs (one claim each) spread over every gemeente of the reference list (weighted by
population, as real claims are), once without and once with `--gemeente-certs`; the difference
is the identities part (query the BSNs per gemeente, seal each one with AES-256-GCM, wrap one key
per gemeente to its certificate, write the data file, key files and manifest). A fourth figure
is the bare `seal_identities` call on the same number of values, the per-row Python that cannot
be vectorised. Each timing is the best of `--repeat` runs (the machine is shared and noisy), the
two tool runs alternating. Results: `bench/results/sealing-<date>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from common import BENCH_DATE, DATA, RESULTS, machine, write_result

from pipelines.pseudonymise import pseudonymise_extract
from pipelines.reference import gemeenten
from privacy.cms import create_demo_certificates
from privacy.keys import new_key
from privacy.sealing import associated_data, new_identity_key, seal_identities
from tests.helpers import make_valid_bsn, raw_claims_frame, write_raw_csv

PARTNER = "CJIB"


def gemeente_certificates(codes: list[str], log=print) -> Path:
    """A certificate for every gemeente (public side only is used), issued once and cached in
    `bench/data/` (issuing some 340 RSA keys takes half a minute)."""
    root = DATA / "sealing-certs"
    stamp = root / "ready.json"
    # since issue 16 a gemeente's certificate also signs (feedback): older caches are issued again
    expected = {"codes": codes, "key_usage": "digital_signature+key_encipherment"}
    if stamp.exists() and json.loads(stamp.read_text()) == expected:
        return root / "hub" / "gemeenten"
    shutil.rmtree(root, ignore_errors=True)
    log(f"issuing {len(codes)} gemeente certificates (cached in {root})")
    create_demo_certificates(root / "hub", root / "gemeente-side", codes)
    stamp.write_text(json.dumps(expected))
    return root / "hub" / "gemeenten"


def raw_extract(rows: int, folder: Path, seed: int = 1) -> tuple[Path, list[str], int]:
    """(raw claims CSV, its BSNs, number of gemeenten in it)."""
    rnd = random.Random(seed)
    bsns = [make_valid_bsn(rnd) for _ in range(rows)]
    codes = np.array([code for code, _, _ in gemeenten()])
    population = np.array([pop for _, _, pop in gemeenten()], dtype=float)
    chosen = np.random.default_rng(seed).choice(codes, size=rows, p=population / population.sum())
    frame = raw_claims_frame(bsns, PARTNER).with_columns(
        pl.Series("gemeente_code", chosen.tolist(), dtype=pl.String)
    )
    return write_raw_csv(frame, folder / "raw" / "claims.csv"), bsns, len(set(chosen.tolist()))


def timed(work):
    start = time.perf_counter()
    value = work()
    return time.perf_counter() - start, value


def markdown(report: dict) -> str:
    m = report["machine"]
    per_m = 1_000_000 / report["rows"]
    return (
        f"Machine: {m['cpus']} cores, {m['memory_gb']} GB, Python {m['python']}, "
        f"DuckDB {m['duckdb']} (1-minute load average at the start: "
        f"{report['load_average_at_start']}).\n\n"
        "| rows | gemeenten | identity rows | tool without certs s | tool with certs s | "
        "identities part s | identities s per million rows | bare sealing s per million |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"| {report['rows']:,} | {report['gemeenten']} | {report['identity_rows']:,} | "
        f"{report['tool_without_certs_s']:.2f} | {report['tool_with_certs_s']:.2f} | "
        f"{report['identities_part_s']:.2f} | "
        f"{report['identities_part_s'] * per_m:.2f} | "
        f"{report['seal_identities_only_s'] * per_m:.2f} |\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    load = round(os.getloadavg()[0], 2)
    codes = [code for code, _, _ in gemeenten()]
    certs = gemeente_certificates(codes)
    key = new_key("linkage")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"raw extract of {args.rows:,} rows ...", flush=True)
        raw, bsns, n_gemeenten = raw_extract(args.rows, folder)

        without, with_certs, identity_rows = float("inf"), float("inf"), 0
        for attempt in range(args.repeat):
            seconds, result = timed(
                lambda: pseudonymise_extract(
                    raw, folder / "plain", key=key, partner=PARTNER, extract_date=BENCH_DATE
                )
            )
            assert result.rows_written == args.rows and result.identities is None
            without = min(without, seconds)
            plain_s = seconds
            seconds, result = timed(
                lambda: pseudonymise_extract(
                    raw,
                    folder / "sealed",
                    key=key,
                    partner=PARTNER,
                    extract_date=BENCH_DATE,
                    gemeente_certs=certs,
                )
            )
            assert result.identities.gemeenten == n_gemeenten
            identity_rows = result.identities.rows
            with_certs = min(with_certs, seconds)
            print(f"  run {attempt + 1}: without {plain_s:.2f} s, with {seconds:.2f} s", flush=True)

        # The per-value crypto alone, on the same number of values, in one call.
        aad = associated_data(PARTNER, BENCH_DATE, "GM0363")
        seal_only = min(
            timed(lambda: seal_identities(new_identity_key(), bsns, aad))[0]
            for _ in range(args.repeat)
        )

    report = {
        "machine": machine(),
        "load_average_at_start": load,
        "rows": args.rows,
        "gemeenten": n_gemeenten,
        "identity_rows": identity_rows,
        "repeat": args.repeat,
        "tool_without_certs_s": round(without, 3),
        "tool_with_certs_s": round(with_certs, 3),
        "identities_part_s": round(with_certs - without, 3),
        "identities_part_s_per_million_rows": round(
            (with_certs - without) * 1_000_000 / args.rows, 3
        ),
        "seal_identities_only_s": round(seal_only, 3),
        "seal_identities_only_s_per_million": round(seal_only * 1_000_000 / args.rows, 3),
    }
    path = write_result("sealing", report)
    table = markdown(report)
    (RESULTS / path.name.replace(".json", ".md")).write_text(table)
    print(json.dumps(report, indent=2))
    print(table, flush=True)


if __name__ == "__main__":
    main()
