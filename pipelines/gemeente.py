"""The gemeente side of signal delivery (format 2): open a `signals.csv.p7m`, prove it is the
hub's file for this gemeente and date, open the sealed identities, and write the CSV with a `bsn`
column next to the message (or to `--out`).

This is what `cri-overlap open-signals` runs; a gemeente can do the same with stock `openssl cms`
and a few lines of Python (`docs/open-signals-openssl.sh`, `docs/open_identities.py`).

Why each check (rules.md "Signal file, version 2"):
- the manifest (`signals.manifest.json`, beside the message) says whose file it is, for which
  date, and the sha256 and row count of the CSV; it is only worth something when it is the hub's,
  so its detached-by-name signature `signals.manifest.json.p7s` (CMS SignedData, content
  attached) must verify against the CA *and* carry exactly the manifest's bytes. Without it a
  file could be relabelled to another date or gemeente;
- the CSV is signed by the hub and encrypted to this gemeente; its sha256, row count and every
  row's `signal_date` must agree with the signed manifest;
- each `identity_sealed` value opens only with the key the partner wrapped for this gemeente and
  with the associated data `<PARTNER>|<extract_date>|<manifest gemeente_code>`, so a value moved
  from another gemeente's file, or under another partner's or date's key, is refused.

Every refusal is one line (`SignalFileRefused`, a `CmsError`, so the CLI prints it without a
traceback) and writes nothing. The CSV written holds BSNs: mode 0600, written atomically. No
BSN, key or sealed value ever appears in an error.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pipelines.dialect import QUOTE, SEPARATOR
from pipelines.fileio import replace_atomically, temporary_sibling
from pipelines.records import SIGNALS_MANIFEST
from pipelines.signals import FORMAT_VERSION, SIGNAL_FILE_COLUMNS
from privacy.cms import CmsError, decrypt, load_certificate, load_private_key, verify_with_openssl
from privacy.sealing import (
    KEY_SUFFIX,
    KEYS_FOLDER,
    SealError,
    associated_data,
    open_identity,
    split_key_name,
    unwrap_key,
)

SIGNATURE_SUFFIX = ".p7s"
HUB_CERTIFICATE = "hub.crt"  # the default pin, beside the CA certificate
SIGNALS_FILE = "signals.csv"
BOM = "\ufeff"
SIGNAL_COLUMNS = SIGNAL_FILE_COLUMNS  # rules.md "Signal file ..." + "version 2", in this order
IDENTITY_COLUMNS = ("identity_key", "identity_sealed")
BSN_COLUMN = "bsn"
_GEMEENTE = re.compile(r"GM[0-9]{4}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIALECT: dict[str, Any] = {"delimiter": SEPARATOR, "quotechar": QUOTE}


class SignalFileRefused(CmsError):
    """A signal file this gemeente must not use; the text is one line naming the file and what
    is wrong, never a value. A CmsError, so the CLI reports it as one line, exit 1."""


@dataclass(frozen=True)
class OpenedSignals:
    """What was written and what the CLI reports: rows, and how many carry a BSN (a signal
    without a sealed identity still counts; the gemeente must find that person another way)."""

    path: Path
    gemeente: str
    run_date: str
    rows: int
    with_identity: int


@dataclass(frozen=True)
class _Manifest:
    gemeente_code: str
    run_date: str
    row_count: int
    sha256: str


def open_signal_file(
    message: Path,
    *,
    key: Path,
    cert: Path,
    ca: Path,
    out: Path | None = None,
    hub_cert: Path | None = None,
    gemeente: str | None = None,
) -> OpenedSignals:
    """Check everything, then write the CSV with `bsn` in place of the two identity columns.

    The signatures must be the hub's: by `hub_cert` (default `hub.crt` beside the CA file),
    not merely by some certificate of the CA. The file must be for `gemeente` (default: the
    code the certificate's file name or subject carries), so a hub-signed file of another
    gemeente re-encrypted to this one is refused. The message is read first, so that a message
    that cannot be read is reported as such (and the manifest's name is the hub's, found beside
    the message even when it was renamed)."""
    message = Path(message)
    sealed_message = message.read_bytes()
    signer = Path(hub_cert) if hub_cert else Path(ca).with_name(HUB_CERTIFICATE)
    if not signer.is_file():
        raise SignalFileRefused(
            f"{signer}: the hub's certificate is needed to check that the hub signed the file; "
            "pass --hub-cert (it comes with the CA certificate)"
        )
    manifest = _signed_manifest(message.with_name(SIGNALS_MANIFEST), Path(ca), signer)
    certificate, private_key = load_certificate(cert), load_private_key(key)
    own = gemeente or _gemeente_of(Path(cert), certificate)
    if manifest.gemeente_code != own:
        raise SignalFileRefused(
            f"{message}: this file is for {manifest.gemeente_code}, not for {own} (the "
            "gemeente of the certificate)"
        )
    try:
        signed = decrypt(sealed_message, certificate, private_key)
    except CmsError:
        # cryptography says no more than "failed": a wrong key and a damaged file look alike
        raise SignalFileRefused(
            f"{message}: cannot decrypt: not encrypted to this certificate and key, or damaged"
        ) from None
    try:
        content = verify_with_openssl(signed, Path(ca), signer)
    except CmsError as exc:
        raise SignalFileRefused(f"{message}: {exc}") from None
    header, rows = _checked_rows(message, content, manifest)
    keys = _identity_keys(message, rows, certificate, private_key)
    opened = _open_identities(message, rows, keys, manifest.gemeente_code)
    # Plaintext goes where the gemeente put the message (its own folder), never into
    # whatever folder the command happened to be run from.
    target = (
        Path(out)
        if out
        else message.with_name(f"signals-{manifest.gemeente_code}-{manifest.run_date}.csv")
    )
    _write_private(target, _csv_bytes(header, rows, opened))
    return OpenedSignals(
        target, manifest.gemeente_code, manifest.run_date, len(rows), sum(map(bool, opened))
    )


def _gemeente_of(path: Path, certificate: x509.Certificate) -> str:
    """The gemeente a certificate belongs to: its file name (`GM0363.crt`) or the first word of
    its common name (`GM0363 signals`, as `certs demo` issues them)."""
    if _GEMEENTE.fullmatch(path.stem):
        return path.stem
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        first = str(attribute.value).split(" ", 1)[0]
        if _GEMEENTE.fullmatch(first):
            return first
    raise SignalFileRefused(
        f"{path}: cannot tell which gemeente this certificate is for; pass --gemeente GMxxxx"
    )


def _signed_manifest(manifest_path: Path, ca: Path, signer: Path) -> _Manifest:
    """The manifest, only when its `.p7s` is the hub's (`signer`, under the CA) and signs
    exactly its bytes."""
    signature_path = manifest_path.with_name(manifest_path.name + SIGNATURE_SUFFIX)
    if not manifest_path.is_file():
        raise SignalFileRefused(
            f"{manifest_path}: the manifest delivered with the signals is missing"
        )
    if not signature_path.is_file():
        raise SignalFileRefused(
            f"{manifest_path}: unsigned ({signature_path.name} is missing); a signal file "
            "is only opened with the hub's signed manifest"
        )
    raw = manifest_path.read_bytes()
    try:
        signed = verify_with_openssl(signature_path.read_bytes(), ca, signer)
    except CmsError as exc:
        raise SignalFileRefused(f"{signature_path}: {exc}") from None
    if signed != raw:
        raise SignalFileRefused(
            f"{manifest_path}: the manifest does not match its signature ({signature_path.name}); "
            "it was changed after the hub signed it"
        )
    return _parse_manifest(raw, manifest_path)


def _parse_manifest(raw: bytes, path: Path) -> _Manifest:
    """The fields a gemeente relies on, each checked; anything else is 'malformed'."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SignalFileRefused(f"{path}: malformed manifest: not UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise SignalFileRefused(f"{path}: malformed manifest: not a JSON object")
    problem = _manifest_problem(document)
    if problem:
        raise SignalFileRefused(f"{path}: malformed manifest: {problem}")
    return _Manifest(
        document["gemeente_code"], document["run_date"], document["row_count"], document["sha256"]
    )


def _manifest_problem(document: Mapping[str, Any]) -> str | None:
    """What is wrong with a manifest object, or None."""
    checks = (
        ("gemeente_code", lambda v: isinstance(v, str) and _GEMEENTE.fullmatch(v), "GM + 4 digits"),
        ("run_date", _is_date, "a date YYYY-MM-DD"),
        ("file", lambda v: v == SIGNALS_FILE, f"{SIGNALS_FILE!r}"),
        ("row_count", lambda v: type(v) is int and v >= 0, "an integer >= 0"),
        ("sha256", lambda v: isinstance(v, str) and _SHA256.fullmatch(v), "64 lowercase hex"),
        ("rules_version", lambda v: isinstance(v, str) and v != "", "a non-empty string"),
        ("format_version", lambda v: type(v) is int and v == FORMAT_VERSION, str(FORMAT_VERSION)),
    )
    for field, valid, expected in checks:
        if field not in document:
            return f"{field} is missing"
        if not valid(document[field]):
            return f"{field} is not {expected}"
    return None


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _checked_rows(
    message: Path, content: bytes, manifest: _Manifest
) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the signed CSV, when it is the one the signed manifest describes."""
    if hashlib.sha256(content).hexdigest() != manifest.sha256:
        raise SignalFileRefused(f"{message}: content does not match the sha256 in the manifest")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise SignalFileRefused(f"{message}: the signals CSV is not UTF-8") from None
    records = list(csv.reader(io.StringIO(text.removeprefix(BOM), newline=""), **_DIALECT))
    if not records or tuple(records[0]) != SIGNAL_COLUMNS:
        raise SignalFileRefused(
            f"{message}: the signals CSV does not have the columns of format "
            f"{FORMAT_VERSION} ({';'.join(SIGNAL_COLUMNS)})"
        )
    header, rows = records[0], records[1:]
    if len(rows) != manifest.row_count:
        raise SignalFileRefused(
            f"{message}: {len(rows)} rows but the manifest says {manifest.row_count}"
        )
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise SignalFileRefused(
                f"{message}: line {line} has {len(row)} fields, not {len(header)}"
            )
        if row[1] != manifest.run_date:
            raise SignalFileRefused(
                f"{message}: signal {row[0]} has signal_date {row[1]}, but the manifest's "
                f"run_date is {manifest.run_date}"
            )
        if bool(row[-2]) != bool(row[-1]):
            raise SignalFileRefused(
                f"{message}: signal {row[0]} has only one of identity_key and identity_sealed"
            )
    return header, rows


def _identity_keys(
    message: Path,
    rows: list[list[str]],
    certificate: x509.Certificate,
    private_key: rsa.RSAPrivateKey,
) -> dict[str, bytes]:
    """{identity_key: K} for every key the rows name, each unwrapped from its key file."""
    keys = {}
    for name in sorted({row[-2] for row in rows if row[-2]}):
        try:
            split_key_name(name)
        except SealError as exc:
            raise SignalFileRefused(f"{message}: {exc}") from None
        path = message.parent / KEYS_FOLDER / f"{name}{KEY_SUFFIX}"
        if not path.is_file():
            raise SignalFileRefused(
                f"{path}: the key file for identity_key {name} is missing; it is delivered "
                f"with the signals in {KEYS_FOLDER}/"
            )
        try:
            keys[name] = unwrap_key(path.read_bytes(), certificate, private_key)
        except SealError as exc:
            raise SignalFileRefused(f"{path}: {exc}") from None
    return keys


def _open_identities(
    message: Path, rows: list[list[str]], keys: Mapping[str, bytes], gemeente: str
) -> list[str]:
    """The BSN of each row ('' without an identity), opened for the manifest's gemeente."""
    bsns = []
    for row in rows:
        name, sealed = row[-2], row[-1]
        if not name:
            bsns.append("")
            continue
        partner, day = split_key_name(name)
        try:
            bsns.append(open_identity(keys[name], sealed, associated_data(partner, day, gemeente)))
        except SealError as exc:
            detail = "" if "does not open" in str(exc) else f" ({exc})"
            raise SignalFileRefused(
                f"{message}: signal {row[0]}: its sealed identity (key {name}) does not open "
                f"for {gemeente}: tampered with, or not sealed for this gemeente{detail}"
            ) from None
    return bsns


def _csv_bytes(header: list[str], rows: list[list[str]], bsns: list[str]) -> bytes:
    """The same dialect as the hub's file (BOM, `;`, quote when necessary, LF), with `bsn` at
    the place of identity_key + identity_sealed."""
    cut = len(SIGNAL_COLUMNS) - len(IDENTITY_COLUMNS)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL, **_DIALECT)
    writer.writerow([*header[:cut], BSN_COLUMN])
    writer.writerows([*row[:cut], bsn] for row, bsn in zip(rows, bsns, strict=True))
    return (BOM + buffer.getvalue()).encode("utf-8")


def _write_private(target: Path, data: bytes) -> None:
    """Write atomically, created with mode 0600 (the file holds BSNs: never readable by others,
    not even for a moment)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target)
    temporary.unlink(missing_ok=True)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        replace_atomically(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
