"""The demo: what a new user runs first (`make demo`).

It plays both sides on one machine: it makes the partners' linkage key and the hub key (kept in
`<data>/keys/`, never in the repo), synthesises raw extracts into `<data>/partner-side/`, runs
the partner tool on every extract into the landing zone, then runs the hub's nightly run
(`run_night`: every stage) on that night.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.layout import Layout
from pipelines.pseudonymise import IDENTITIES_SOURCE, PseudonymiseResult, pseudonymise_extract
from pipelines.reference import gemeenten
from pipelines.run import RunSummary, run_night
from pipelines.settings import Settings
from pipelines.synth import synth
from privacy.cms import create_demo_certificates
from privacy.keys import KeyMaterial, load_key_file, new_key, write_key_file


@dataclass(frozen=True)
class DemoSummary:
    extract_date: dt.date
    persons: int
    landing: Path
    deliveries: list[PseudonymiseResult]
    run: RunSummary


def demo_certs(data_dir: Path) -> tuple[Path, Path]:
    """(hub-side certificates, gemeente-side keys) of the demo."""
    layout = Layout(data_dir)
    return layout.certs, layout.gemeente_keys


def ensure_demo_certificates(
    data_dir: Path, on_progress: Callable[[int], None] | None = None
) -> Path:
    """Issue the demo CA, hub pair and a certificate for every gemeente, once."""
    hub_side, gemeente_side = demo_certs(data_dir)
    if not (hub_side / "hub.crt").is_file():
        create_demo_certificates(
            hub_side, gemeente_side, [code for code, _, _ in gemeenten()], on_progress=on_progress
        )
    return hub_side


def demo_key_path(data_dir: Path, purpose: str) -> Path:
    return Layout(data_dir).demo_key(purpose)


def demo_key(data_dir: Path, purpose: str) -> KeyMaterial:
    """The demo's key for `purpose`, created on first use (a real partner or hub brings its own)."""
    path = demo_key_path(data_dir, purpose)
    if not path.exists():
        write_key_file(new_key(purpose), path)
    return load_key_file(path, purpose)


def deliver_demo_night(
    data_dir: Path,
    *,
    persons: int,
    extract_date: dt.date,
    seed: int,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[Path, list[PseudonymiseResult]]:
    """The partners' side of a demo night: synthesise raw extracts and pseudonymise each into
    `<data_dir>/landing/<date>/<PARTNER>/`, each claims extract with its sealed identities (so
    the demo's gemeenten can find the people signalled to them). Returns the landing folder and
    the deliveries.

    The partners seal to the gemeenten's public certificates, which the demo keeps on the hub
    side (`<certs>/gemeenten/`); they are issued here when missing (once: `cri-overlap demo`
    issues them before, with a progress bar)."""
    data_dir = Path(data_dir)
    linkage_key = demo_key(data_dir, "linkage")
    demo_key(data_dir, "hub")
    gemeente_certs = ensure_demo_certificates(data_dir) / "gemeenten"
    raw_dir = Layout(data_dir).partner_side / extract_date.isoformat()
    landing = Layout(data_dir).landing_date(extract_date)
    raw = synth(
        raw_dir, extract_date=extract_date, persons=persons, seed=seed, on_progress=on_progress
    )
    deliveries = [
        pseudonymise_extract(
            path,
            landing / partner,
            key=linkage_key,
            partner=partner,
            extract_date=extract_date,
            gemeente_certs=gemeente_certs if dataset == IDENTITIES_SOURCE else None,
        )
        for (partner, dataset), (path, _rows) in raw.files.items()
    ]
    return landing, deliveries


def demo_settings(data_dir: Path) -> Settings:
    """The hub's settings for the demo: its own key and certificates, under `data_dir`."""
    return Settings.resolve(
        data_dir=data_dir,
        landing_dir=Layout(data_dir).landing,
        hub_key_file=demo_key_path(data_dir, "hub"),
        certs_dir=demo_certs(data_dir)[0],
        workers=os.cpu_count() or 1,
    )


def run_demo(
    data_dir: Path,
    *,
    persons: int,
    extract_date: dt.date,
    seed: int,
    on_progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Deliver one demo night (`deliver_demo_night`), then run the hub's night on it."""
    landing, deliveries = deliver_demo_night(
        data_dir, persons=persons, extract_date=extract_date, seed=seed, on_progress=on_progress
    )
    night = run_night(extract_date, settings=demo_settings(data_dir))
    return DemoSummary(extract_date, persons, landing, deliveries, night)
