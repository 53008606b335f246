"""The feedback file a gemeente sends back about its signals (interfaces.md section 6): the shared
definitions the hub reads it with, and the gemeente side that checks and signs it
(`cri-overlap feedback`).

A feedback file is `<data-dir>/feedback/<GMxxxx>/feedback-<YYYY-MM-DD>.csv.p7s`: a CSV in the
dialect of `pipelines/dialect.py` with the columns `signal_id;status_date;status;result`, inside
CMS SignedData (DER, content attached) made with the gemeente's key and certificate. The hub checks
the signature against that gemeente's own certificate (`privacy.cms.verify_signed_by`), so nobody
else can report for a gemeente.

Gemeenten already record what became of each signal in the terms of DDAS Vroegsignalering, the
exchange model their software reports to CBS in. So a value may be one of our codes or the DDAS
Dutch label that means it; labels are matched ignoring case and surrounding whitespace, exact
otherwise, and the signed CSV always holds codes. The labels are the enumerations
`EnumSignaalstatus` and `EnumEindresultaat` of the DDAS JSON schema, repository
VNG-Realisatie/ddas-vroegsignalering (labels only: DDAS gives no codes):
- `v1.2/json_schema_Uitwisselmodel.json` (the current model), plus the labels it renamed from
- `v1.0/json_schema_Uitwisselmodel.json` and `v0.9/json_schema_Uitwisselmodel.json`, because
  gemeente software may still export those.
The table, with the decisions below, is in docs/feedback.md. Where DDAS and our codes part:
- DDAS keeps "not picked up" reasons (`Niet opgepakt: ...`, `Inwoner is overleden`, `Persoon is
  geen inwoner (meer) in de gemeente`) both as a signal status and as a case result; here they are
  statuses only. In the result column such a label is accepted when it repeats the row's status
  (a DDAS export often does) and then leaves the result empty; otherwise it is refused.
- DDAS v1.2 also has the status `Inwoner al bekend bij schuldhulpverlening`: the signal went to
  the person's debt counsellor, i.e. picked up with result `already_known_debt_help`, which an
  empty result becomes (another result contradicts it and is refused).
- `Definitief geen contact kunnen krijgen` and `Geen reactie na eerder contact` are both
  `no_contact`, and the financial and non-financial `Vervolghulp en/of verwijzing ...` are both
  `follow_up_help`: our codes do not tell them apart.

Every refusal is a `FeedbackFileError`: one line naming the file, the line and what to change.
Status and result values may be quoted in it (a fixed vocabulary); a signal_id or date never is.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipelines.dialect import QUOTE, SEPARATOR
from pipelines.errors import CriError

if TYPE_CHECKING:
    from cryptography import x509

FEEDBACK_COLUMNS = ("signal_id", "status_date", "status", "result")
PICKED_UP = "picked_up"
STATUSES = (
    "open",
    PICKED_UP,
    "not_picked_up_unjustified",
    "not_picked_up_repeat",
    "not_picked_up_other",
    "deceased",
    "not_resident",
)
RESULTS = (
    "already_known_debt_help",
    "other_help_running",
    "no_contact",
    "no_help_wanted",
    "already_arranged",
    "quick_fix",
    "follow_up_help",
    "referred_without_contact",
)

DDAS_REPOSITORY = "VNG-Realisatie/ddas-vroegsignalering"
DDAS_SOURCE = "v1.2/json_schema_Uitwisselmodel.json"  # ($defs EnumSignaalstatus, EnumEindresultaat)
_ALREADY_KNOWN = "Inwoner al bekend bij schuldhulpverlening"

# DDAS EnumSignaalstatus label -> status (v0.9, v1.0 and v1.2 unless noted).
DDAS_STATUS_LABELS: dict[str, str] = {
    "Nog niet opgepakt": "open",
    "Opgepakt": PICKED_UP,  # v1.2
    _ALREADY_KNOWN: PICKED_UP,  # v1.2; the result is then already_known_debt_help
    "Niet opgepakt: onterecht signaal": "not_picked_up_unjustified",
    "Niet opgepakt: herhaalde melding": "not_picked_up_repeat",
    "Niet opgepakt: andere reden": "not_picked_up_other",
    "Inwoner is overleden": "deceased",
    "Persoon is geen inwoner (meer) in de gemeente": "not_resident",
}
# A status label that also says the result: what an empty result becomes.
DDAS_STATUS_IMPLIED_RESULTS: dict[str, str] = {_ALREADY_KNOWN: "already_known_debt_help"}

# DDAS EnumEindresultaat label -> result (v0.9, v1.0 and v1.2 unless noted).
DDAS_RESULT_LABELS: dict[str, str] = {
    _ALREADY_KNOWN: "already_known_debt_help",
    "Inwoner heeft al een ander lopend traject": "other_help_running",
    "Definitief geen contact kunnen krijgen": "no_contact",
    "Geen reactie na eerder contact": "no_contact",
    "Inwoner regelt het zelf/hoeft geen hulp vanuit vroegsignalering": "no_help_wanted",  # v1.0+
    "Inwoner hoeft geen hulp vanuit vroegsignalering": "no_help_wanted",  # v0.9
    "Inwoner heeft zelf al betaald/betalingsregeling getroffen": "already_arranged",
    "(Budget)advies en/of quick fix": "quick_fix",  # v1.0+
    "(Budget)advies en/of \u2018quick fix\u2019": "quick_fix",  # v0.9, typographic quotes
    "Vervolghulp en/of verwijzing": "follow_up_help",  # v1.2
    "Vervolghulp en/of verwijzing financieel": "follow_up_help",
    "Vervolghulp en/of verwijzing niet financieel": "follow_up_help",
    "Verwijzing zonder tussenkomst inwoner": "referred_without_contact",  # v1.2
    "Verwijzing zonder toestemming": "referred_without_contact",  # v1.0
    "Verwijzing zonder contact": "referred_without_contact",  # v0.9
}
# DDAS EnumEindresultaat labels that are a status here, not a result.
DDAS_RESULT_STATUS_LABELS: dict[str, str] = {
    label: code for label, code in DDAS_STATUS_LABELS.items() if code not in ("open", PICKED_UP)
}

FEEDBACK_NAME_PATTERN = re.compile(r"feedback-(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})\.csv\.p7s")
SIGNAL_ID_PATTERN = re.compile(r"SIG-(?P<date>[0-9]{8})-[0-9a-f]{16}")
# The range the hub's contract accepts (data_contracts/feedback-1.0.0.yaml, status_date_in_range).
FIRST_STATUS_DATE, LAST_STATUS_DATE = dt.date(2020, 1, 1), dt.date(2099, 12, 31)

_GEMEENTE = re.compile(r"GM[0-9]{4}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BOM = "\ufeff"
_HEADER = SEPARATOR.join(FEEDBACK_COLUMNS)
_FIX_CODES = "see docs/feedback.md for the codes and the DDAS labels accepted"


class FeedbackFileError(CriError):
    """A feedback file that cannot be signed or read as it is; one line naming the file, the line
    and what to change (exit 1)."""


def feedback_file_name(date: dt.date) -> str:
    """The name the hub looks for in `feedback/<GMxxxx>/`: `feedback-<YYYY-MM-DD>.csv.p7s`."""
    return f"feedback-{date.isoformat()}.csv.p7s"


def _lookup(codes: tuple[str, ...], labels: Mapping[str, str]) -> dict[str, str]:
    """Matching key (trimmed, case-folded) -> code, for the codes themselves and the labels."""
    table = {code.casefold(): code for code in codes}
    table.update({label.strip().casefold(): code for label, code in labels.items()})
    return table


def _key(value: str) -> str:
    return value.strip().casefold()


_STATUS_LOOKUP = _lookup(STATUSES, DDAS_STATUS_LABELS)
_RESULT_LOOKUP = _lookup(RESULTS, DDAS_RESULT_LABELS)
_RESULT_AS_STATUS = {_key(label): code for label, code in DDAS_RESULT_STATUS_LABELS.items()}
_IMPLIED = {_key(label): result for label, result in DDAS_STATUS_IMPLIED_RESULTS.items()}


def normalise_feedback(text: str, source: str) -> str:
    """The feedback CSV checked and in its canonical form: header, then one row per line with
    codes (never labels), `;`, no BOM, `\\n` line ends. What is signed is exactly this, so the
    hub reads one spelling whatever the gemeente's software exported.

    `source` names the file in messages. Refused (FeedbackFileError): a header other than
    exactly `signal_id;status_date;status;result`, a row with another number of fields, a
    signal_id not shaped like the hub's (`SIG-YYYYMMDD-<16 lowercase hex>`), a status_date that
    is not a real date YYYY-MM-DD within 2020..2099, an unknown status or result, a result when
    the status is not picked_up, the same signal and status_date twice, and a file without
    rows. Lines that are empty (or only separators) are skipped."""
    reader = csv.reader(
        io.StringIO(text.removeprefix(_BOM), newline=""),
        delimiter=SEPARATOR,
        quotechar=QUOTE,
        strict=True,
    )
    rows: list[list[str]] = []
    first_line: dict[tuple[str, str], int] = {}  # (signal_id, status_date) -> its line
    try:
        _check_header(next(reader, None), source)
        for line, record in _numbered(reader):
            if any(field.strip() for field in record):
                row = _checked_row(record, f"{source}: line {line}")
                earlier = first_line.setdefault((row[0], row[1]), line)
                if earlier != line:
                    raise FeedbackFileError(
                        f"{source}: line {line}: same signal_id and status_date as line "
                        f"{earlier}; keep one status per signal and date (a later status needs "
                        "a later status_date)"
                    )
                rows.append(row)
    except csv.Error as exc:
        raise FeedbackFileError(
            f"{source}: line {reader.line_num}: not valid CSV ({exc}); separate fields with "
            f"'{SEPARATOR}' and put a value in double quotes only as a whole"
        ) from None
    if not rows:
        raise FeedbackFileError(
            f"{source}: no feedback rows after the header; add one row per signal "
            f"('{_HEADER}') or send nothing"
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=SEPARATOR, quotechar=QUOTE, lineterminator="\n")
    writer.writerow(FEEDBACK_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue()


class _Reader(Protocol):
    """What `_numbered` needs of a `csv.reader`."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...


def _numbered(reader: _Reader) -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, record): a quoted field may span lines, and the reader only
    knows the line a record ends on."""
    line = reader.line_num + 1
    for record in reader:
        yield line, record
        line = reader.line_num + 1


def _check_header(header: list[str] | None, source: str) -> None:
    """Exactly the four columns, in order: the hub reads them by position and name alike."""
    if header is None:
        raise FeedbackFileError(
            f"{source}: the file is empty; it needs the header '{_HEADER}' and one row per signal"
        )
    if tuple(header) == FEEDBACK_COLUMNS:
        return
    missing = [c for c in FEEDBACK_COLUMNS if c not in header]
    extra = [c for c in header if c not in FEEDBACK_COLUMNS]
    if len(header) == 1 and "," in header[0]:
        hint = f"the separator is '{SEPARATOR}', not ','"
    elif missing or extra:
        hint = "; ".join(
            [f"missing: {', '.join(missing)}"] * bool(missing)
            + [f"not allowed: {', '.join(map(_shown, extra))}"] * bool(extra)
        )
    else:
        hint = "same columns, other order or repeated"
    raise FeedbackFileError(f"{source}: line 1: the header must be exactly '{_HEADER}' ({hint})")


def _checked_row(record: list[str], where: str) -> list[str]:
    """[signal_id, status_date, status code, result code or ''] of one line, or the refusal."""
    if len(record) != len(FEEDBACK_COLUMNS):
        raise FeedbackFileError(
            f"{where}: {len(record)} fields, expected {len(FEEDBACK_COLUMNS)} ('{_HEADER}'); "
            f"separate fields with '{SEPARATOR}' and quote a value that contains one"
        )
    signal_id, status_date, status_value, result_value = (field.strip() for field in record)
    _check_signal_id(signal_id, where)
    _check_status_date(status_date, where)
    status = _status(status_value, where)
    result = _result(result_value, status, where)
    implied = _IMPLIED.get(_key(status_value))
    if implied is not None:
        if result not in ("", implied):
            raise FeedbackFileError(
                f"{where}: status {_shown(status_value)} means picked_up with result {implied}, "
                f"but the result is {result}; set status picked_up (DDAS: Opgepakt) to give "
                "another result"
            )
        result = implied
    if result and status != PICKED_UP:
        raise FeedbackFileError(
            f"{where}: result {result} given with status {status}; a result is only for status "
            f"{PICKED_UP}: leave result empty or set the status to {PICKED_UP}"
        )
    return [signal_id, status_date, status, result]


def _check_signal_id(value: str, where: str) -> None:
    if not value:
        raise FeedbackFileError(
            f"{where}: signal_id is empty; copy the signal_id of the signal file unchanged"
        )
    match = SIGNAL_ID_PATTERN.fullmatch(value)
    if match is None or not _is_date(match["date"], "%Y%m%d"):
        raise FeedbackFileError(
            f"{where}: signal_id is not of the form SIG-YYYYMMDD-<16 lowercase hex digits>; "
            "copy the signal_id of the signal file unchanged"
        )


def _check_status_date(value: str, where: str) -> None:
    if not value:
        raise FeedbackFileError(f"{where}: status_date is empty; give the date YYYY-MM-DD")
    if not _DATE.fullmatch(value) or not _is_date(value, "%Y-%m-%d"):
        raise FeedbackFileError(
            f"{where}: status_date is not a real date YYYY-MM-DD; write it as e.g. 2026-01-31"
        )
    if not FIRST_STATUS_DATE <= dt.date.fromisoformat(value) <= LAST_STATUS_DATE:
        raise FeedbackFileError(
            f"{where}: status_date is outside {FIRST_STATUS_DATE}..{LAST_STATUS_DATE}; "
            "give the date the status was reached"
        )


def _is_date(value: str, pattern: str) -> bool:
    try:
        dt.datetime.strptime(value, pattern)
    except ValueError:
        return False
    return True


def _status(value: str, where: str) -> str:
    if not value.strip():
        raise FeedbackFileError(
            f"{where}: status is empty; use one of {', '.join(STATUSES)} or its DDAS label"
        )
    code = _STATUS_LOOKUP.get(_key(value))
    if code is None:
        raise FeedbackFileError(
            f"{where}: status {_shown(value)} is neither a status code ({', '.join(STATUSES)}) "
            f"nor a DDAS Vroegsignalering status label; {_FIX_CODES}"
        )
    return code


def _result(value: str, status: str, where: str) -> str:
    """The result code ('' for none). A DDAS case result that is a status here is accepted only
    as a repeat of the row's status, and then means no result."""
    if not value.strip():
        return ""
    code = _RESULT_LOOKUP.get(_key(value))
    if code is not None:
        return code
    as_status = _RESULT_AS_STATUS.get(_key(value))
    if as_status is None:
        raise FeedbackFileError(
            f"{where}: result {_shown(value)} is neither a result code ({', '.join(RESULTS)}) "
            f"nor a DDAS Vroegsignalering result label; {_FIX_CODES}"
        )
    if as_status != status:
        raise FeedbackFileError(
            f"{where}: result {_shown(value)} is a status here ({as_status}), not a result; "
            "put it in the status column and leave result empty"
        )
    return ""


def _shown(value: str) -> str:
    """A value quoted for a message, cut short: enough to find it, never a whole line."""
    value = value.strip()
    return repr(value if len(value) <= 60 else value[:57] + "...")


def load_feedback(source: Path) -> str:
    """The normalised CSV of a feedback file on disk (UTF-8, a BOM allowed): `normalise_feedback`
    after reading and decoding, with the same one-line refusals."""
    source = Path(source)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise FeedbackFileError(
            f"{source}: cannot read the feedback CSV ({exc.strerror or type(exc).__name__}); "
            "check the path given with --in"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FeedbackFileError(
            f"{source}: line {line}: not UTF-8; save the file as UTF-8 (in Excel: CSV UTF-8)"
        ) from None
    return normalise_feedback(text, str(source))


def sign_feedback(
    gemeente: str,
    source: Path,
    key: Path,
    cert: Path,
    out: Path | None = None,
    today: dt.date | None = None,
) -> Path:
    """Check and normalise the feedback CSV `source`, sign it as `gemeente` and write the
    SignedData (DER, content attached) to `out`, default `feedback-<today>.csv.p7s` beside the
    source: the name the hub reads. Returns the path written.

    Refused before anything is written: a `gemeente` that is not GM + 4 digits; a certificate
    that is not this gemeente's (by the rule `open-signals` uses: its file name or the first word
    of its common name), that cannot sign S/MIME, or is outside its validity; a key that is not
    the certificate's; any problem of the CSV. The hub would refuse such a file, and the gemeente
    would not see why. The file is written atomically with mode 0600 (it says what became of
    people's signals); no row content is ever printed."""
    # The signing side is imported here: the hub imports this module for its definitions, and
    # pipelines.gemeente (which imports the signal stage) and cryptography are not its business.
    from pipelines.gemeente import _write_private
    from privacy.cms import load_certificate, load_private_key, sign

    if not _GEMEENTE.fullmatch(gemeente):
        raise FeedbackFileError(
            f"--gemeente {_shown(gemeente)}: not a gemeente code; use GM and 4 digits, e.g. GM0363"
        )
    source, cert, key = Path(source), Path(cert), Path(key)
    certificate, private_key = load_certificate(cert), load_private_key(key)
    _check_signer(gemeente, cert, certificate)
    if certificate.public_key().public_numbers() != private_key.public_key().public_numbers():
        raise FeedbackFileError(
            f"{key}: this private key does not belong to {cert}; use the key that came with the "
            "certificate"
        )
    normalised = load_feedback(source)
    target = Path(out) if out else source.with_name(feedback_file_name(today or dt.date.today()))
    if target.resolve() == source.resolve():
        raise FeedbackFileError(
            f"{target}: would overwrite the feedback CSV; give --out another file"
        )
    _write_private(target, sign(normalised.encode("utf-8"), certificate, private_key))
    return target


def _check_signer(gemeente: str, cert: Path, certificate: x509.Certificate) -> None:
    """The certificate is this gemeente's and one the hub's `openssl cms -verify` accepts as a
    signer; refused otherwise with what to use instead."""
    from pipelines.gemeente import SignalFileRefused, _gemeente_of

    try:
        owner = _gemeente_of(cert, certificate)
    except SignalFileRefused:
        raise FeedbackFileError(
            f"{cert}: cannot tell which gemeente this certificate is for (neither its file name "
            f"nor its common name starts with GMxxxx); sign with {gemeente}'s own certificate"
        ) from None
    if owner != gemeente:
        raise FeedbackFileError(
            f"{cert}: this is {owner}'s certificate, not {gemeente}'s; sign with {gemeente}'s "
            f"own certificate and key (the hub checks against its certificate for {gemeente})"
        )
    problem = _signing_problem(certificate)
    if problem:
        raise FeedbackFileError(
            f"{cert}: {problem}, so the hub would refuse the signature; ask for a certificate "
            "that may sign (demo: issue new ones with `cri-overlap certs demo`)"
        )


def _signing_problem(certificate: x509.Certificate) -> str | None:
    """Why `openssl cms -verify` would not accept this certificate as a signer, or None."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = dt.datetime.now(dt.UTC)
    if now < certificate.not_valid_before_utc:
        return "the certificate is not valid yet"
    if now > certificate.not_valid_after_utc:
        return "the certificate has expired"
    extensions = {extension.oid: extension.value for extension in certificate.extensions}
    usage = extensions.get(x509.KeyUsage.oid)
    if isinstance(usage, x509.KeyUsage) and not (
        usage.digital_signature or usage.content_commitment
    ):
        return "its key usage does not allow signing (no digitalSignature)"
    purposes = extensions.get(x509.ExtendedKeyUsage.oid)
    if isinstance(purposes, x509.ExtendedKeyUsage) and not {
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    } & set(purposes):
        return "its extended key usage does not allow S/MIME (no emailProtection)"
    return None
