"""Benchmark: the whole nightly run (`cri-overlap run`) on a national-scale delivery.

Records wall time per stage and the peak resident memory of this process and of its worker
processes (the parallel ingest), to `bench/results/night-<persons>-<date>.json`.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from common import BENCH_DATE, fresh_hub, machine, national_delivery, write_result

from pipelines.run import run_night
from privacy.keys import new_key, write_key_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=2_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    root = national_delivery(args.persons)
    fresh_hub(root)
    key_path = root / "keys" / "hub.key.json"
    key_path.unlink(missing_ok=True)
    write_key_file(new_key("hub"), key_path)
    start = time.perf_counter()
    summary = run_night(
        BENCH_DATE,
        data_dir=root,
        hub_key_path=key_path,
        workers=args.workers,
        on_stage=lambda name, s: print(f"  {name}: {s:.1f} s", flush=True),
    )
    total = time.perf_counter() - start
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = {
        "machine": machine(),
        "persons": args.persons,
        "workers": args.workers,
        "total_s": round(total, 1),
        "stages_s": summary.seconds,
        "peak_rss_mb": {"main": round(peak_self), "largest_worker": round(peak_children)},
        "claims": summary.link.claims,
        "persons_linked": summary.link.persons,
        "persons_multi": summary.link.persons_multi,
        "plans": summary.plans.outcomes,
    }
    path = write_result(f"night-{args.persons}", report)
    print(
        f"night of {args.persons:,} persons: {total:.1f} s, peak RSS main "
        f"{peak_self:.0f} MB, largest worker {peak_children:.0f} MB -> {path}",
        flush=True,
    )


if __name__ == "__main__":
    main()
