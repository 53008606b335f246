"""Keyed hashing: HMAC-SHA256 pseudonyms in Python (the reference) and inside DuckDB (fast path).

`pseudonym()` is the definition from `interfaces.md`: lower(hex(HMAC-SHA256(secret, bsn9))).
For millions of rows the same HMAC is composed from DuckDB's native `sha256`
(`sha256(opad || unhex(sha256(ipad || message)))`, RFC 2104), which runs on all cores with no
Python per row. The key only ever travels as two bound query parameters (the padded key blocks),
never in query text, so it cannot appear in a query log or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

_BLOCK = 64  # SHA-256 block size in bytes

# SQL expression of HMAC-SHA256 over a BLOB expression `{message}`, as lower-case hex.
# The parameter names are reserved for the pads produced by `hmac_sql_parameters`.
HMAC_SQL_TEMPLATE = "sha256($hmac_opad || unhex(sha256($hmac_ipad || {message})))"


def pseudonym(secret: bytes, message: str | bytes) -> str:
    """Reference HMAC-SHA256 as lower-case hex (the linkage pseudonym for a normalised BSN)."""
    data = message.encode("ascii") if isinstance(message, str) else message
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class HmacPads:
    """The two padded key blocks of RFC 2104. Equivalent to the key: same care, never logged."""

    inner: bytes = field(repr=False)
    outer: bytes = field(repr=False)


def hmac_pads(secret: bytes) -> HmacPads:
    """Derive the inner/outer pads; keys longer than a block are first hashed, as RFC 2104 says."""
    key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\0")
    return HmacPads(
        inner=bytes(b ^ 0x36 for b in key),
        outer=bytes(b ^ 0x5C for b in key),
    )


def hmac_sql(message_blob_sql: str) -> str:
    """The HMAC SQL expression over a BLOB-valued SQL expression (e.g. `encode(bsn9)`)."""
    return HMAC_SQL_TEMPLATE.format(message=message_blob_sql)


def hmac_sql_parameters(secret: bytes) -> dict[str, bytes]:
    """Named parameters to bind with `hmac_sql` (DuckDB `$hmac_ipad`, `$hmac_opad`)."""
    pads = hmac_pads(secret)
    return {"hmac_ipad": pads.inner, "hmac_opad": pads.outer}


# Hub person ids: a keyed hash of the linkage pseudonym under the hub's own secret, so nothing
# past the link stage carries a partner pseudonym. 32 hex characters (128 bits) are plenty for a
# few million persons and make a person id visibly different from a 64-hex linkage pseudonym.
PERSON_ID_HEX = 32


def hub_person_id(hub_secret: bytes, linkage_pseudonym: str) -> str:
    """Reference: the hub person id of one linkage pseudonym."""
    return pseudonym(hub_secret, linkage_pseudonym)[:PERSON_ID_HEX]


def create_person_ids(con: Any, pseudonyms_sql: str, hub_secret: bytes) -> None:
    """Create temp table `person_ids(person_pseudonym, person_id)` for the distinct pseudonyms a
    query returns; the hub key travels only as bound parameters."""
    con.execute(
        "create or replace temp table person_ids as "
        "select person_pseudonym, "
        f"left({hmac_sql('encode(person_pseudonym)')}, {PERSON_ID_HEX}) as person_id "
        f"from (select distinct person_pseudonym from ({pseudonyms_sql}))",
        hmac_sql_parameters(hub_secret),
    )
