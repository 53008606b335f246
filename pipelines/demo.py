"""The demo: what a new user runs first (`make demo`).

It plays every side on one machine: it makes the partners' linkage key and the hub key (kept in
`<data>/keys/`, never in the repo), synthesises raw extracts into `<data>/partner-side/`, runs
the partner tool on every extract into the landing zone, then runs the hub's nightly run
(`run_night`: every stage). It runs two nights, `FIRST_NIGHT_BEFORE` days apart (past the
cool-down, so that people signalled on the first are signalled again on the second unless the
feedback says otherwise), and between them a few gemeenten open their signal files and send
back what became of the signals (`send_demo_feedback`), so the effects of rules.md section 5
show on the second night.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.feedback_file import (
    DDAS_RESULT_LABELS,
    DDAS_STATUS_LABELS,
    FEEDBACK_COLUMNS,
    feedback_file_name,
    sign_feedback,
)
from pipelines.layout import Layout
from pipelines.pseudonymise import IDENTITIES_SOURCE, PseudonymiseResult, pseudonymise_extract
from pipelines.reference import gemeenten
from pipelines.run import RunSummary, run_night
from pipelines.settings import Settings
from pipelines.synth import synth
from privacy.cms import create_demo_certificates, load_certificate
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
    if not (hub_side / "hub.crt").is_file() or not _gemeenten_can_sign(gemeente_side):
        create_demo_certificates(
            hub_side, gemeente_side, [code for code, _, _ in gemeenten()], on_progress=on_progress
        )
    return hub_side


def _gemeenten_can_sign(gemeente_side: Path) -> bool:
    """Whether the demo gemeenten' certificates allow signing (feedback); those a demo issued
    before feedback existed allow encryption only, and are issued again."""
    from cryptography import x509

    first = next(iter(sorted(gemeente_side.glob("GM*.crt"))), None)
    if first is None:
        return False
    usage = load_certificate(first).extensions.get_extension_for_class(x509.KeyUsage).value
    return bool(usage.digital_signature)


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
    """The demo as `cri-overlap demo` runs it, without the printing: a first night
    `FIRST_NIGHT_BEFORE` days before `extract_date`, feedback from the gemeenten with most
    signals (`send_demo_feedback`), then the night of `extract_date`."""
    first_date = extract_date - dt.timedelta(days=FIRST_NIGHT_BEFORE)
    settings = demo_settings(data_dir)
    deliver_demo_night(
        data_dir, persons=persons, extract_date=first_date, seed=seed, on_progress=on_progress
    )
    first = run_night(first_date, settings=settings)
    send_demo_feedback(data_dir, first, feedback_gemeenten(first))
    landing, deliveries = deliver_demo_night(
        data_dir, persons=persons, extract_date=extract_date, seed=seed, on_progress=on_progress
    )
    night = run_night(extract_date, settings=settings)
    return DemoSummary(extract_date, persons, landing, deliveries, night)


def feedback_gemeenten(night: RunSummary) -> list[tuple[str, int]]:
    """(code, signals) of the `DEMO_FEEDBACK_GEMEENTEN` gemeenten with most signals delivered on
    `night` (ties: the smaller code)."""
    return sorted(
        ((code, counts[0]) for code, counts in night.delivery.identities.items()),
        key=lambda item: (-item[1], item[0]),
    )[:DEMO_FEEDBACK_GEMEENTEN]


# The demo's two nights are this many days apart: past the 180-day cool-down, so that the
# feedback's effects (exclusion, longer cool-down, re-routing, deceased) decide the second.
FIRST_NIGHT_BEFORE = 190
# What the demo gemeenten report, signal by signal in turn (status, result): every status and
# the results that change a rule (rules.md section 5), and some that change none.
DEMO_FEEDBACK = (
    ("picked_up", "follow_up_help"),
    ("picked_up", "no_help_wanted"),
    ("deceased", ""),
    ("not_resident", ""),
    ("not_picked_up_unjustified", ""),
    ("picked_up", "no_contact"),
    ("open", ""),
    ("picked_up", "already_known_debt_help"),
    ("not_picked_up_repeat", ""),
    ("picked_up", "quick_fix"),
)
DEMO_FEEDBACK_GEMEENTEN = 3  # the gemeenten with most signals on the first night
FEEDBACK_AFTER_DAYS = 14  # the statuses are dated two weeks after the first night


def _label(code: str, labels: dict[str, str]) -> str:
    """The first DDAS label of a code (the demo's last gemeente writes labels, not codes)."""
    return next((label for label, value in labels.items() if value == code), code)


def send_demo_feedback(
    data_dir: Path, night: RunSummary, gemeenten_sent: list[tuple[str, int]]
) -> list[Path]:
    """The gemeenten' side between the demo's nights: each of `gemeenten_sent` (code, signals)
    opens its signal file with its own key (as `cri-overlap open-signals` does), writes a
    feedback CSV about its signals (`DEMO_FEEDBACK` in turn; the last one in DDAS labels, as
    its software would export them) and signs it (`cri-overlap feedback`) into the hub's
    `feedback/<GM>/`. Returns the signed files."""
    from pipelines.gemeente import open_signal_file

    keys = Layout(data_dir).gemeente_keys
    status_date = night.run_date + dt.timedelta(days=FEEDBACK_AFTER_DAYS)
    written = []
    for position, (code, _) in enumerate(gemeenten_sent):
        work = Layout(data_dir).gemeente_side / code
        opened = open_signal_file(
            night.signals.outbox / code / "signals.csv.p7m",
            key=keys / f"{code}.key",
            cert=keys / f"{code}.crt",
            ca=keys / "ca.crt",
            out=work / f"signals-{night.run_date}.csv",
        )
        with opened.path.open(encoding="utf-8-sig", newline="") as handle:
            signal_ids = sorted(row["signal_id"] for row in csv.DictReader(handle, delimiter=";"))
        in_labels = position == len(gemeenten_sent) - 1
        lines = [";".join(FEEDBACK_COLUMNS)]
        for index, signal_id in enumerate(signal_ids):
            status, result = DEMO_FEEDBACK[index % len(DEMO_FEEDBACK)]
            if in_labels:
                status = _label(status, DDAS_STATUS_LABELS)
                result = _label(result, DDAS_RESULT_LABELS) if result else ""
            lines.append(f"{signal_id};{status_date.isoformat()};{status};{result}")
        source = work / f"feedback-{status_date}.csv"
        source.write_text("\n".join(lines) + "\n", encoding="utf-8")
        target = Layout(data_dir).feedback / code / feedback_file_name(status_date)
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(
            sign_feedback(code, source, keys / f"{code}.key", keys / f"{code}.crt", out=target)
        )
    return written
