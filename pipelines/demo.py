"""The demo: what a new user runs first (`make demo`).

It plays both sides on one machine: it makes the partners' linkage key and the hub key (kept in
`<data>/keys/`, never in the repo), synthesises raw extracts into `<data>/partner-side/`, runs
the partner tool on every extract into the landing zone, then runs the hub's intake (`ingest`)
on that night. Later stages of the nightly run extend it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.ingest import IngestOutcome, ingest_date
from pipelines.pseudonymise import PseudonymiseResult, pseudonymise_extract
from pipelines.synth import synth
from privacy.keys import KeyMaterial, load_key_file, new_key, write_key_file


@dataclass(frozen=True)
class DemoSummary:
    extract_date: dt.date
    persons: int
    landing: Path
    deliveries: list[PseudonymiseResult]
    intake: list[IngestOutcome]


def demo_key(data_dir: Path, purpose: str) -> KeyMaterial:
    """The demo's key for `purpose`, created on first use (a real partner or hub brings its own)."""
    path = Path(data_dir) / "keys" / f"{purpose}.key.json"
    if not path.exists():
        write_key_file(new_key(purpose), path)
    return load_key_file(path, purpose)


def run_demo(
    data_dir: Path,
    *,
    persons: int,
    extract_date: dt.date,
    seed: int,
    on_progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Synthesise and pseudonymise one night's deliveries into `<data_dir>/landing/<date>/`,
    then ingest them into `<data_dir>/staging/<date>/`."""
    data_dir = Path(data_dir)
    linkage_key = demo_key(data_dir, "linkage")
    demo_key(data_dir, "hub")
    raw_dir = data_dir / "partner-side" / extract_date.isoformat()
    landing = data_dir / "landing" / extract_date.isoformat()
    raw = synth(
        raw_dir, extract_date=extract_date, persons=persons, seed=seed, on_progress=on_progress
    )
    deliveries = [
        pseudonymise_extract(
            path, landing / partner, key=linkage_key, partner=partner, extract_date=extract_date
        )
        for (partner, _dataset), (path, _rows) in raw.files.items()
    ]
    intake = ingest_date(extract_date, data_dir=data_dir)
    return DemoSummary(extract_date, persons, landing, deliveries, intake)
