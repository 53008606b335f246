"""Shared benchmark helpers: a cached national-scale delivery and machine facts."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.layout import Layout
from pipelines.pseudonymise import pseudonymise_extract
from pipelines.reference import gemeenten
from pipelines.synth import GENERATOR_VERSION, synth
from privacy.cms import create_demo_certificates
from privacy.keys import load_key_file, new_key, write_key_file

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
BENCH_DATE = dt.date(2026, 11, 22)


def machine() -> dict[str, object]:
    import duckdb

    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
    }


def national_delivery(persons: int, seed: int = 1, log=print) -> Path:
    """`<data>/landing/<BENCH_DATE>/` for `persons` persons, generated once and reused (cached by
    persons, seed and generator version). Returns the data dir that holds `landing/`.

    Every partner seals identities (issue 15): demo certificates for every gemeente are issued
    into `<root>/certs/` (hub side: `hub.crt`, `hub.key`, `gemeenten/`) and
    `<root>/gemeente-side/keys/`, and each claims extract is pseudonymised with
    `--gemeente-certs`, so the night ingests, routes and delivers sealed identities."""
    root = DATA / f"national-{persons}-seed{seed}"
    stamp = root / "ready.json"
    expected = {
        "persons": persons,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "identities": True,
    }
    if stamp.exists() and json.loads(stamp.read_text()) == expected:
        return root
    shutil.rmtree(root, ignore_errors=True)
    log(f"generating a delivery of {persons:,} persons (cached in {root})")
    layout = Layout(root)
    raw = synth(layout.partner_side, extract_date=BENCH_DATE, persons=persons, seed=seed)
    key_path = layout.demo_key("linkage")
    write_key_file(new_key("linkage"), key_path)
    key = load_key_file(key_path, "linkage")
    log(f"issuing demo certificates for {len(gemeenten())} gemeenten")
    create_demo_certificates(layout.certs, layout.gemeente_keys, [g for g, _, _ in gemeenten()])
    for (partner, _), (path, _) in raw.files.items():
        pseudonymise_extract(
            path,
            layout.landing_date(BENCH_DATE) / partner,
            key=key,
            partner=partner,
            extract_date=BENCH_DATE,
            gemeente_certs=layout.certs / "gemeenten",
        )
    shutil.rmtree(layout.partner_side)  # raw BSNs are not kept
    stamp.write_text(json.dumps(expected))
    return root


def fresh_hub(root: Path) -> None:
    """Forget everything the hub derived, keep the landing zone."""
    layout = Layout(root)
    for folder in (*layout.derived_roots, layout.quarantine):
        shutil.rmtree(folder, ignore_errors=True)


def write_result(name: str, report: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
