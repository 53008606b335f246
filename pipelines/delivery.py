"""Delivery of signal files to gemeenten: sign with the hub certificate, encrypt to the
gemeente's certificate (`privacy.cms`), write `outbox/<date>/<GM>/signals.csv.p7m` atomically.

Certificates come from a directory (`--certs`, `CRI_CERTS_DIR`, default `<data>/certs`):
`hub.crt` + `hub.key` (the hub's signing pair) and `gemeenten/<GMxxxx>.crt`. A gemeente without a
certificate gets no encrypted file: its plain signals stay in the outbox and the run says so, so
they wait and are not lost; delivering again after the certificate arrives is safe.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.fileio import replace_atomically, temporary_sibling
from privacy.cms import load_certificate, load_private_key, sign_and_encrypt

log = logging.getLogger(__name__)

CERTS_ENV = "CRI_CERTS_DIR"
MESSAGE_NAME = "signals.csv.p7m"


@dataclass(frozen=True)
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    reason: str | None = None


def certs_dir(explicit: Path | None, data_dir: Path) -> Path:
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(CERTS_ENV)
    return Path(env) if env else Path(data_dir) / "certs"


def deliver_signals(data_dir: Path, run_date: dt.date, certs: Path) -> DeliveryReport:
    """Encrypt every gemeente's signals of `run_date` that has a certificate."""
    outbox = Path(data_dir) / "outbox" / run_date.isoformat()
    gemeenten = sorted(p.parent.name for p in outbox.glob("GM*/signals.csv"))
    if not gemeenten:
        return DeliveryReport()
    if not (certs / "hub.crt").is_file() or not (certs / "hub.key").is_file():
        return DeliveryReport(
            waiting=gemeenten, reason=f"no hub certificate in {certs} (hub.crt, hub.key)"
        )
    hub_cert = load_certificate(certs / "hub.crt")
    hub_key = load_private_key(certs / "hub.key")
    delivered, waiting = [], []
    for code in gemeenten:
        recipient = certs / "gemeenten" / f"{code}.crt"
        message = outbox / code / MESSAGE_NAME
        if not recipient.is_file():
            message.unlink(missing_ok=True)
            waiting.append(code)
            continue
        data = (outbox / code / "signals.csv").read_bytes()
        temporary = temporary_sibling(message)
        temporary.write_bytes(
            sign_and_encrypt(data, hub_cert, hub_key, load_certificate(recipient))
        )
        replace_atomically(temporary, message)
        delivered.append(code)
    log.info(
        "signals %s: delivered to %s gemeenten, %s waiting for a certificate",
        run_date,
        len(delivered),
        len(waiting),
    )
    return DeliveryReport(
        delivered, waiting, f"no certificate in {certs / 'gemeenten'}" if waiting else None
    )
