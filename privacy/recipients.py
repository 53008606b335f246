"""Identifiers for recipients outside the hub, derived from the hub secret with HKDF.

- `person_ref`: the person as one gemeente sees them. A key per gemeente (HKDF info names the
  gemeente) makes the refs stable over time for that gemeente and unlinkable between gemeenten.
- `signal_id`: stable for the same person and run date, revealing neither.

Python functions are the reference; the SQL helpers compute the same values for a whole table
with the derived keys bound as parameters or held in an in-memory table, never in query text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privacy.hashing import hmac_pads, hmac_sql, hmac_sql_parameters, pseudonym

REF_HEX = 32
SIGNAL_HEX = 16


def derive_key(hub_secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, e.g. `person_ref/GM0363` or `signal_id`."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"cri-overlap/{purpose}".encode()
    ).derive(hub_secret)


def person_ref(hub_secret: bytes, gemeente_code: str, person_id: str) -> str:
    return pseudonym(derive_key(hub_secret, f"person_ref/{gemeente_code}"), person_id)[:REF_HEX]


def signal_id(hub_secret: bytes, person_id: str, run_date: dt.date) -> str:
    digest = pseudonym(derive_key(hub_secret, "signal_id"), f"{person_id}|{run_date.isoformat()}")
    return f"SIG-{run_date:%Y%m%d}-{digest[:SIGNAL_HEX]}"


def add_signal_ids(con: Any, table: str, hub_secret: bytes, run_date: dt.date) -> None:
    """Add column `signal_id` to `table(person_id, ...)` for `run_date`."""
    digest = hmac_sql(f"encode(person_id || '|' || '{run_date.isoformat()}')")
    con.execute(f"alter table {table} add column signal_id varchar")
    con.execute(
        f"update {table} set signal_id = 'SIG-{run_date:%Y%m%d}-' || left({digest}, {SIGNAL_HEX})",
        hmac_sql_parameters(derive_key(hub_secret, "signal_id")),
    )


def create_person_refs(con: Any, source_sql: str, hub_secret: bytes) -> None:
    """Temp table `person_refs(person_id, gemeente_code, person_ref)` for the (person_id,
    gemeente_code) pairs a query returns. The per-gemeente pads live only in this connection."""
    pairs = con.execute(f"select distinct gemeente_code from ({source_sql})").fetchall()
    rows = []
    for (gemeente,) in pairs:
        pads = hmac_pads(derive_key(hub_secret, f"person_ref/{gemeente}"))
        rows.append((gemeente, pads.inner, pads.outer))
    con.execute(
        "create or replace temp table recipient_pads (gemeente_code varchar, "
        "inner_pad blob, outer_pad blob)"
    )
    if rows:
        con.executemany("insert into recipient_pads values (?, ?, ?)", rows)
    con.execute(
        "create or replace temp table person_refs as "
        "select s.person_id, s.gemeente_code, left(sha256(k.outer_pad || unhex(sha256("
        f"k.inner_pad || encode(s.person_id)))), {REF_HEX}) as person_ref "
        f"from (select distinct person_id, gemeente_code from ({source_sql})) as s "
        "inner join recipient_pads as k on s.gemeente_code = k.gemeente_code"
    )
    con.execute("drop table recipient_pads")
