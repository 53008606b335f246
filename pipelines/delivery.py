"""Delivery of a night's outbox: the partners' plan lines and the gemeenten's signal files,
signed with the hub certificate and encrypted to each gemeente's certificate (`privacy.cms`).

Signals reach gemeenten only forward in time (interfaces.md section 4): a night is delivered
when its date is on or after the last date whose signals were delivered (the same date again
re-delivers the same signal ids); an older date, rerun or backfilled, delivers nothing. A night
with a partner left out (no data within the staleness limit) delivers no signal files: a
partial picture must not reach a gemeente.

The night's outbox is built in a work folder, with its `delivery.json`, and swapped in whole as
`outbox/<date>/`; only then is the delivery appended to the ledger (`pipelines.ledger`), the
record of what was delivered that the cool-down reads. A run killed before that rename delivered
nothing and counts nothing as sent; one killed between the two has its delivery recorded at the
next start (`ledger.complete_from_outbox`).

Certificates come from a directory (`Settings.certs`: `--certs`, `CRI_CERTS_DIR`, default
`<data>/certs`):
`hub.crt` + `hub.key` (the hub's signing pair) and `gemeenten/<GMxxxx>.crt`. A gemeente without a
certificate gets no encrypted file: its plain signals stay in the outbox and the run says so, so
they wait and are not lost; delivering again after the certificate arrives is safe.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines.carry_forward import Selection
from pipelines.evict import restore_staged
from pipelines.faults import kill_point
from pipelines.feedback import write_partner_feedback
from pipelines.fileio import flush_folder, replace_atomically, temporary_sibling
from pipelines.layout import Layout
from pipelines.ledger import ledger_dates, new_delivery, record
from pipelines.plans import write_partner_exports
from pipelines.policy import load_policy
from pipelines.records import DELIVERY_RECORD, SIGNALS_MANIFEST, write_record
from pipelines.recovery import fresh_folder, swap_in
from pipelines.signals import signal_file_rows, write_signal_files
from privacy.cms import load_certificate, load_private_key, sign, sign_and_encrypt
from privacy.keys import KeyMaterial

log = logging.getLogger(__name__)

MESSAGE_NAME = "signals.csv.p7m"
MANIFEST_SIGNATURE = f"{SIGNALS_MANIFEST}.p7s"  # SignedData of the manifest (format version 2)


@dataclass(frozen=True)
class DeliveryDecision:
    """What a night may deliver: its outbox (plan lines) and its signal files."""

    outbox: bool
    signals: bool
    note: str | None = None
    # the staged identities datasets the signal files take sealed values from (the selection's)
    identities: tuple[Path, ...] = ()


@dataclass(frozen=True)
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    reason: str | None = None
    signals_delivered: bool = False
    note: str | None = None
    identities: dict[str, list[int]] = field(default_factory=dict)  # GM: [signals, sealed]


def decide(data_dir: Path, run_date: dt.date, selection: Selection) -> DeliveryDecision:
    """Forward in time only, and only a complete picture (see the module docstring)."""
    delivered = ledger_dates(data_dir)
    if delivered and run_date < delivered[-1]:
        return DeliveryDecision(
            False,
            False,
            f"nothing delivered: signals for {delivered[-1]} were already delivered and "
            "signals reach gemeenten only forward in time (tables recomputed)",
        )
    if not selection.complete:
        left_out = ", ".join(c.label for c in selection.left_out)
        return DeliveryDecision(
            True,
            False,
            f"no signal files delivered: {left_out} left out (no accepted data within "
            f"{selection.max_staleness_days} days); a partial picture must not reach a gemeente",
        )
    return DeliveryDecision(True, True, identities=tuple(selection.files("identities")))


def deliver_night(
    data_dir: Path,
    run_date: dt.date,
    *,
    folder: Path,
    decision: DeliveryDecision,
    hub_key: KeyMaterial,
    certs: Path,
) -> DeliveryReport:
    """Build the night's outbox from the committed tables in `folder`, swap it in, and record
    the delivered signals in the ledger."""
    if not decision.outbox:
        log.info("outbox %s: %s", run_date, decision.note)
        return DeliveryReport(note=decision.note)
    layout = Layout(data_dir)
    work = fresh_folder(layout.outbox_work(run_date))
    write_partner_exports(folder, work, run_date)
    write_partner_feedback(data_dir, folder, work, run_date, delivered=decision.signals)
    delivered: list[str] = []
    waiting: list[str] = []
    reason = None
    with_identity: dict[str, list[int]] = {}
    if decision.signals:
        identities = list(decision.identities)
        restore_staged(layout, identities)  # evicted since: a rerun long after its night
        rows = signal_file_rows(folder, hub_key, identities)
        gemeenten = write_signal_files(rows, work, run_date, str(load_policy()["version"]))
        delivered, waiting, reason = _encrypt(work, gemeenten, certs)
        with_identity = identity_counts(rows)
    delivery = new_delivery(
        run_date,
        signals=decision.signals,
        encrypted_for=delivered,
        waiting_for_certificate=waiting,
        # per gemeente [signals, with a sealed identity]: the monitoring of identities
        identities=with_identity,
    )
    write_record(work / DELIVERY_RECORD, delivery)
    flush_folder(work)  # the gemeente files were written without a flush each (hundreds)
    kill_point("outbox_built")
    swap_in(work, layout.outbox_date(run_date))
    kill_point("after_outbox")
    if decision.signals:
        record(data_dir, folder, delivery)
        kill_point("after_ledger")
    log.info(
        "outbox %s: signals delivered to %s gemeenten, %s waiting for a certificate; "
        "%s of %s signals with a sealed identity",
        run_date,
        len(delivered),
        len(waiting),
        sum(n for _, n in with_identity.values()),
        sum(n for n, _ in with_identity.values()),
    )
    return DeliveryReport(
        delivered, waiting, reason, decision.signals, decision.note, with_identity
    )


def identity_counts(rows: pl.DataFrame) -> dict[str, list[int]]:
    """Per gemeente: [signals, signals with a sealed identity] (rules.md: signals without an
    identity are still sent, and counted as such)."""
    if not rows.height:
        return {}
    counts = (
        rows.group_by("gemeente_code")
        .agg(pl.len().alias("signals"), pl.col("identity_sealed").is_not_null().sum())
        .sort("gemeente_code")
    )
    return {code: [int(n), int(m)] for code, n, m in counts.iter_rows()}


def _encrypt(
    outbox: Path, gemeenten: list[str], certs: Path
) -> tuple[list[str], list[str], str | None]:
    """`signals.csv.p7m` for every gemeente with a certificate; the others wait. Into the
    outbox being built: not flushed file by file (the builder flushes all before the swap)."""
    if not gemeenten:
        return [], [], None
    if not (certs / "hub.crt").is_file() or not (certs / "hub.key").is_file():
        return [], gemeenten, f"no hub certificate in {certs} (hub.crt, hub.key)"
    hub_cert = load_certificate(certs / "hub.crt")
    hub_key = load_private_key(certs / "hub.key")
    delivered, waiting = [], []
    for code in gemeenten:
        recipient = certs / "gemeenten" / f"{code}.crt"
        if not recipient.is_file():
            waiting.append(code)
            continue
        message = outbox / code / MESSAGE_NAME
        data = (outbox / code / "signals.csv").read_bytes()
        temporary = temporary_sibling(message)
        temporary.write_bytes(
            sign_and_encrypt(data, hub_cert, hub_key, load_certificate(recipient))
        )
        replace_atomically(temporary, message, flush=False)
        # the manifest signed too: gemeente, date, row count and sha256 cannot be relabelled
        manifest = outbox / code / SIGNALS_MANIFEST
        temporary = temporary_sibling(manifest.with_name(MANIFEST_SIGNATURE))
        temporary.write_bytes(sign(manifest.read_bytes(), hub_cert, hub_key))
        replace_atomically(temporary, manifest.with_name(MANIFEST_SIGNATURE), flush=False)
        delivered.append(code)
    return delivered, waiting, (f"no certificate in {certs / 'gemeenten'}" if waiting else None)
