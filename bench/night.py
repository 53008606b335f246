"""Benchmark: the whole nightly run (`cri-overlap run`) at several national scales, against the
floor (`bench/floor.sql`: only the core computation, by hand, in one DuckDB script).

For each scale: wall time per stage, total, and the peak resident memory of the whole process
tree (the run plus its ingest worker processes, sampled every 0.1 s with psutil). Every partner
delivers sealed identities (issue 15); the same night is first run without them (set aside),
so the table shows what they add. Results go to
`bench/results/night-<date>.json` and a Markdown table `bench/results/night-<date>.md`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import duckdb
import psutil
from common import BENCH_DATE, RESULTS, fresh_hub, machine, national_delivery, write_result

from pipelines.layout import Layout
from pipelines.run import run_night
from privacy.keys import new_key, write_key_file
from privacy.sealing import KEYS_FOLDER

STAGES = ("ingest", "link", "plans", "signals", "publish", "report")


class PeakMemory:
    """Peak RSS of this process and all its children, sampled in a background thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker may exit between calls
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def floor_seconds(root: Path) -> float:
    landing = Layout(root).landing_date(BENCH_DATE)
    claims = sorted(str(p) for p in landing.glob("*/claims.csv"))
    script = (Path(__file__).with_name("floor.sql")).read_text()
    start = time.perf_counter()
    with duckdb.connect() as con:
        for statement in [s for s in script.split(";\n") if s.strip()]:
            lines = [x for x in statement.splitlines() if not x.lstrip().startswith("--")]
            sql = "\n".join(lines)
            params = {
                k: v
                for k, v in {
                    "claims": claims,
                    "income": str(landing / "TSL" / "income.csv"),
                    "run_date": BENCH_DATE,
                }.items()
                if f"${k}" in sql
            }
            con.execute(sql, params)
    return time.perf_counter() - start


@contextlib.contextmanager
def identities_set_aside(root: Path):
    """The landing zone without its identities datasets for the duration (moved aside and back),
    to measure the same night without sealed identities."""
    landing = Layout(root).landing_date(BENCH_DATE)
    aside = root / "identities-aside"
    shutil.rmtree(aside, ignore_errors=True)
    moved = []
    for partner in sorted(p for p in landing.iterdir() if p.is_dir()):
        for path in [*partner.glob("identities.*"), partner / KEYS_FOLDER]:
            if path.exists():
                target = aside / partner.name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(path, target)
                moved.append((target, path))
    try:
        yield
    finally:
        for target, path in moved:
            os.rename(target, path)
        shutil.rmtree(aside, ignore_errors=True)


def timed_night(root: Path, workers: int) -> tuple[float, int, object]:
    """One night on a fresh hub: (seconds, peak RSS bytes, summary)."""
    fresh_hub(root)
    key_path = Layout(root).demo_key("hub")
    key_path.unlink(missing_ok=True)
    write_key_file(new_key("hub"), key_path)
    start = time.perf_counter()
    with PeakMemory() as memory:
        summary = run_night(
            BENCH_DATE,
            data_dir=root,
            hub_key_path=key_path,
            workers=workers,
            certs=Layout(root).certs,  # signal files signed and encrypted, as in production
        )
    return time.perf_counter() - start, memory.peak, summary


def one_scale(persons: int, workers: int) -> dict:
    root = national_delivery(persons)
    floor = min(floor_seconds(root) for _ in range(2))
    # the same night without sealed identities first: what the identities add (issue 15)
    with identities_set_aside(root):
        plain_total, _, plain = timed_night(root, workers)
    total, peak, summary = timed_night(root, workers)
    landing = Layout(root).landing_date(BENCH_DATE)
    rows = sum(sum(1 for _ in p.open("rb")) - 1 for p in landing.glob("*/*.csv"))
    return {
        "persons": persons,
        "rows_delivered": rows,
        "total_s": round(total, 1),
        "stages_s": summary.seconds,
        "peak_rss_mb": round(peak / 2**20),
        "floor_s": round(floor, 1),
        "ratio_to_floor": round(total / floor, 1),
        "claims": summary.link.claims,
        "persons_multi": summary.link.persons_multi,
        "signals": summary.signals.signals,
        "signals_with_identity": sum(m for _, m in summary.delivery.identities.values()),
        "identities_rows": sum(
            json.loads(p.read_text())["row_count"]
            for p in landing.glob("*/identities.manifest.json")
        ),
        "without_identities": {"total_s": round(plain_total, 1), "stages_s": plain.seconds},
    }


def markdown(results: list[dict], info: dict) -> str:
    header = (
        "| persons | rows | total s | "
        + " | ".join(f"{s} s" for s in STAGES)
        + " | peak RSS MB | floor s | x floor | signals (sealed) | without identities s |"
    )
    lines = [
        f"Machine: {info['cpus']} cores, {info['memory_gb']} GB, Python {info['python']}, "
        f"DuckDB {info['duckdb']}.",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for r in results:
        stages = " | ".join(f"{r['stages_s'].get(s, 0):.1f}" for s in STAGES)
        lines.append(
            f"| {r['persons']:,} | {r['rows_delivered']:,} | {r['total_s']:.1f} | "
            f"{stages} | {r['peak_rss_mb']:,} | {r['floor_s']:.1f} | "
            f"{r['ratio_to_floor']:.1f} | {r['signals']:,} ({r['signals_with_identity']:,}) | "
            f"{r['without_identities']['total_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[250_000, 1_000_000, 2_000_000])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    results = []
    for persons in args.persons:
        print(f"night of {persons:,} persons ...", flush=True)
        results.append(one_scale(persons, args.workers))
        print(f"  {results[-1]}", flush=True)
    info = machine()
    path = write_result("night", {"machine": info, "workers": args.workers, "results": results})
    table = markdown(results, info)
    (RESULTS / path.name.replace(".json", ".md")).write_text(table)
    print(table, flush=True)


if __name__ == "__main__":
    main()
