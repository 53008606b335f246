"""Feedback from gemeenten: the hub's intake, and what the feedback counts for on a run date.

A gemeente sends back what became of its signals (interfaces.md section 6) as
`<data-dir>/feedback/<GMxxxx>/feedback-<YYYY-MM-DD>.csv.p7s`: the CSV inside CMS SignedData by
its own certificate (`cri-overlap feedback` makes it). Each night, before the signals are
decided, `take_in` reads every file it has not taken in before (by gemeente and sha256, so a
re-sent file with new content counts and the same bytes again change nothing) and

1. refuses, with one line naming the file, anything not signed by exactly that gemeente's
   certificate (`<certs>/gemeenten/<GM>.crt`) or that breaks the `feedback` contract (checked
   by Great Expectations, like a partner's delivery: `pipelines.ingest.check_csv`); a refused
   file stays where it is and is reported again each night until it is replaced or removed;
2. ignores, listed by line, rows about a signal that was not sent to that gemeente (looked up
   in the ledger of the date in the signal id);
3. appends the rest, with the hub's own person id and the partners that qualified for the
   signal, to the feedback ledger as `feedback_ledger/<intake id>/` (one folder per intake,
   renamed into place whole, so a killed run takes the same files in again next time); after
   the night's commit, `expire` folds the intakes' rows into `feedback_ledger/compacted.parquet`
   (`compact`), so that what a night reads does not grow with what gemeenten re-send.

The gemeente's CSV is never kept by the hub beyond its checked rows; reasons and results stay
on the hub: they reach the analysts as monitoring counts (suppressed in the `agg_` tables) and
the partners only as counts of picked-up and not-picked-up signals (`partner_counts`).

`standing` turns the ledger into the statuses that count on a run date (rules.md section 5:
dated on or before it, about a signal of that date or earlier, the latest status_date per
signal), and `effects` into what they change for each person; `pipelines.signals` applies them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.contract_runner import check_rules
from pipelines.contract_sql import delivery_rules, delivery_views
from pipelines.contracts import load_contract
from pipelines.errors import CriError
from pipelines.faults import kill_point
from pipelines.feedback_file import FEEDBACK_NAME_PATTERN, SIGNAL_ID_PATTERN
from pipelines.fileio import replace_atomically, sha256_file, temporary_sibling
from pipelines.ingest import Violation, parse_csv, printable
from pipelines.layout import Layout
from pipelines.ledger import delivered_files, ledger_dates
from pipelines.plans import write_partner_file
from pipelines.policy import load_policy
from pipelines.records import read_json, write_record
from pipelines.retention import newest_date
from pipelines.sql import (
    connect,
    copy_to,
    create_table,
    query,
    relation,
    run_script,
)
from privacy.cms import CmsError, verify_signed_by

log = logging.getLogger(__name__)

FEEDBACK_CONTRACT = ("feedback", "1.0.0")
GEMEENTE_FOLDER = re.compile(r"GM[0-9]{4}")
INTAKE_RECORD = "intake.json"
ROWS_FILE = "feedback.parquet"
COMPACTED = "compacted.parquet"  # the intakes' rows, compacted (see `compact`)
COMPACTED_KEY = "cri_overlap_intakes"
MAX_FILE_BYTES = 64 * 1024 * 1024
EXAMPLES = 5


class FeedbackError(CriError):
    """The feedback ledger cannot be written or read."""


@dataclass(frozen=True)
class FeedbackFile:
    """What the intake did with one file: `accepted` (its rows taken in; `ignored` of them
    were about signals not sent to this gemeente) or `refused` (nothing taken in; `reason`)."""

    gemeente: str
    file: str  # path under the data directory
    status: str
    rows: int = 0
    ignored: int = 0
    ignored_lines: list[int] = field(default_factory=list)
    reason: str | None = None

    def line(self) -> str:
        """One line for the run output and the report."""
        if self.status == "refused":
            # the reason can quote the file's content (a header): gemeente input, never raw
            return f"feedback {printable(self.file)}: REFUSED, {printable(self.reason or '')}"
        said = f"feedback {printable(self.file)}: {self.rows:,} row(s) taken in"
        if self.ignored:
            lines = ", ".join(map(str, self.ignored_lines[:EXAMPLES]))
            said += (
                f"; {self.ignored:,} ignored: about signals not sent to {self.gemeente} "
                f"(line{'s' if self.ignored > 1 else ''} {lines}"
                f"{' and more' if self.ignored > EXAMPLES else ''})"
            )
        return said

    def as_dict(self) -> dict[str, Any]:
        return {
            "gemeente": self.gemeente,
            "file": self.file,
            "status": self.status,
            "rows": self.rows,
            "ignored": self.ignored,
            "ignored_lines": self.ignored_lines[:EXAMPLES],
            "reason": self.reason,
        }


@dataclass(frozen=True)
class FeedbackIntake:
    """One night's intake: every new file's outcome, and the ledger folder written (if any)."""

    files: list[FeedbackFile]
    folder: Path | None = None

    @property
    def refused(self) -> list[FeedbackFile]:
        return [f for f in self.files if f.status == "refused"]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def feedback_ledger(data_dir: Path) -> Path:
    return Layout(data_dir).feedback_ledger


def feedback_files(data_dir: Path) -> list[Path]:
    """The rows files that together are the feedback ledger: the compacted file (when there is
    one) and the rows file of every intake not compacted into it yet, oldest intake first."""
    root = feedback_ledger(data_dir)
    compacted = root / COMPACTED
    merged = compacted_intakes(compacted)
    intakes = sorted(
        p for p in root.glob(f"[0-9]*/{ROWS_FILE}") if p.is_file() and p.parent.name not in merged
    )
    return ([compacted] if compacted.is_file() else []) + intakes


def compacted_intakes(compacted: Path) -> set[str]:
    """The intake ids whose rows the compacted file holds (in its Parquet key-value metadata,
    so that the rows and the list of what they hold are replaced in one step); none when there
    is no compacted file yet."""
    if not compacted.is_file():
        return set()
    try:
        metadata = pq.read_schema(compacted).metadata or {}
        return set(json.loads(metadata[COMPACTED_KEY.encode()]))
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise FeedbackError(
            f"{compacted}: not a compacted feedback ledger ({type(exc).__name__}); "
            "restore it from a backup, or remove it and put back the intakes' rows files"
        ) from None


def _taken_in(data_dir: Path) -> set[tuple[str, str]]:
    """(gemeente, sha256) of every file an earlier intake accepted."""
    seen = set()
    for record in feedback_ledger(data_dir).glob(f"[0-9]*/{INTAKE_RECORD}"):
        for entry in read_json(record).get("files", []):
            seen.add((entry["gemeente"], entry["sha256"]))
    return seen


def _inbox_files(layout: Layout) -> list[tuple[str, Path]]:
    """(gemeente, file) for every file in a gemeente's feedback folder, in name order."""
    found = []
    if not layout.feedback.is_dir():
        return found
    for folder in sorted(layout.feedback.iterdir()):
        if _gemeente_folder(folder):
            found += [
                (folder.name, p) for p in sorted(folder.iterdir()) if not p.name.startswith(".")
            ]
    return found


STRAY = (
    "not in a gemeente's folder, so not read; put it in feedback/<GMxxxx>/ (GM and four "
    "digits: the gemeente that signed it)"
)


def _strays(layout: Layout) -> list[Path]:
    """What sits in `feedback/` outside the gemeenten' folders (a file at the top, a folder
    named otherwise): never read, but said, so that feedback put in the wrong place is not
    silently lost."""
    if not layout.feedback.is_dir():
        return []
    return [
        entry
        for entry in sorted(layout.feedback.iterdir())
        if not entry.name.startswith(".") and not _gemeente_folder(entry)
    ]


def _gemeente_folder(entry: Path) -> bool:
    """`feedback/GMxxxx/` itself, not a link to it: the only place the intake reads."""
    return entry.is_dir() and not entry.is_symlink() and bool(GEMEENTE_FOLDER.fullmatch(entry.name))


@dataclass
class _Verified:
    """A file whose signature holds, waiting for the contract check."""

    gemeente: str
    file: str
    digest: str
    content: bytes


def take_in(data_dir: Path, certs: Path, run_date: dt.date) -> FeedbackIntake:
    """Take in every feedback file not taken in before (see the module docstring)."""
    layout = Layout(Path(data_dir))
    seen = _taken_in(layout.data_dir)
    outcomes: list[FeedbackFile] = []
    verified: list[_Verified] = []
    for path in _strays(layout):
        relative = path.relative_to(layout.data_dir).as_posix()
        outcomes.append(FeedbackFile("", relative, "refused", reason=STRAY))
    for gemeente, path in _inbox_files(layout):
        relative = path.relative_to(layout.data_dir).as_posix()
        found = _verify(gemeente, path, relative, certs, seen)
        if isinstance(found, _Verified):
            verified.append(found)
        elif found is not None:
            outcomes.append(FeedbackFile(gemeente, relative, "refused", reason=found))
    refusals, checked = _check_all(verified)
    for number, refusal in sorted(refusals.items()):
        item = verified[number]
        outcomes.append(FeedbackFile(item.gemeente, item.file, "refused", reason=refusal))
    passed = [(n, item) for n, item in enumerate(verified) if n not in refusals]
    resolved = _resolve(layout.data_dir, passed, checked) if passed else None
    if resolved is not None:
        for number, item in passed:
            counts = resolved.filter(pc.equal(resolved["file_no"], number))
            ignored = counts.filter(pc.is_null(counts["signal_date"]))["line"].to_pylist()
            outcomes.append(
                FeedbackFile(
                    item.gemeente,
                    item.file,
                    "accepted",
                    counts.num_rows - len(ignored),
                    len(ignored),
                    sorted(ignored),
                )
            )
    outcomes.sort(key=lambda o: o.file)
    folder = None
    if resolved is not None:
        taken = [o for o in outcomes if o.status == "accepted"]
        digests = {item.file: item.digest for _, item in passed}
        folder = _record(layout, run_date, taken, digests, resolved)
    return FeedbackIntake(outcomes, folder)


def _check_all(verified: list[_Verified]) -> tuple[dict[int, str], Any]:
    """Which files break the `feedback` contract and why (by position in `verified`), and the
    rows of all the others (Arrow: `file_no`, each row's `line` in its file, the typed
    columns). The files are parsed one by one, as a partner's delivery is, and their rows
    checked together in one scan and one Great Expectations report (a report per file would
    make a night of many files slow); a rule that fails is looked up per file in DuckDB with
    the rule's own query."""
    if not verified:  # most nights: no new file, no check (no GX import, no report)
        return {}, None
    contract = load_contract(*FEEDBACK_CONTRACT)
    refusals: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="cri-feedback-") as tmp, connect(":memory:") as con:
        run_script(con, "privacy/bsn_macros")
        run_script(con, "feedback/feedback_text")
        offset = 0
        for number, item in enumerate(verified):
            csv_path = Path(tmp) / f"{number}.csv"
            csv_path.write_bytes(item.content)
            run_script(con, "feedback/forget_parse_errors")
            rows, violations = parse_csv(con, csv_path, contract)
            if violations:
                refusals[number] = _contract_refusal(contract, violations)
            elif rows == 0:
                refusals[number] = "the file has no rows; send feedback about a signal"
            else:
                run_script(con, "feedback/collect_text", {"offset": offset, "file_no": number})
                offset += rows
        con.execute("drop view if exists delivery_text")
        run_script(con, "feedback/checked_text")
        for statement in delivery_views(contract):
            con.execute(statement)
        rules = delivery_rules(contract, parameters={})
        report = check_rules(con, rules, contract=contract)
        failed = {f.rule for f in report.failures}
        for number, violations in _broken_per_file(
            con, [r for r in rules if r.name in failed]
        ).items():
            refusals[number] = _contract_refusal(contract, violations)
        rows = relation(
            con, "feedback/checked_rows", {"refused": sorted(refusals)}
        ).to_arrow_table()
    return refusals, rows


def _broken_per_file(
    con: duckdb.DuckDBPyConnection, rules: list[Any]
) -> dict[int, list[Violation]]:
    """The violations of each file, for the rules the night's check found broken."""
    broken: dict[int, list[Violation]] = {}
    for rule in rules:
        con.sql(rule.lines_sql("delivery")).create_view("offending", replace=True)
        for file_no, rows, lines in query(con, "feedback/offending_lines").fetchall():
            broken.setdefault(file_no, []).append(
                Violation(rule.name, rule.description, rows, list(lines))
            )
    return broken


def _contract_refusal(contract: Any, violations: list[Violation]) -> str:
    first = violations[0]
    more = f"; {len(violations) - 1} more rule(s) broken" if len(violations) > 1 else ""
    return f"breaks contract {contract.name} {contract.version}: {first.detail()}{more}"


def _verify(
    gemeente: str, path: Path, relative: str, certs: Path, seen: set[tuple[str, str]]
) -> _Verified | str | None:
    """The file with its content once its signature holds; else why it is refused (one
    line); None for the same bytes taken in before (nothing new)."""
    refusal = _refusal(path)
    if refusal is not None:
        return refusal
    try:
        digest = sha256_file(path)
        if (gemeente, digest) in seen:
            return None  # before the name's date: a file taken in before that check existed
        if _name_date(path) is None:
            return "the date in the file name is not a date; name it feedback-<YYYY-MM-DD>.csv.p7s"
        content = verify_signed_by(path.read_bytes(), certs / "gemeenten" / f"{gemeente}.crt")
    except CmsError as exc:
        return _not_signed(gemeente, certs, exc)
    except OSError as exc:  # unreadable, or gone since it was listed: this file only
        return f"cannot be read ({exc.strerror or type(exc).__name__}); send it again"
    return _Verified(gemeente, relative, digest, content)


def _name_date(path: Path) -> dt.date | None:
    """The date in a feedback file's name; None when the name has none or it is no real date
    (`feedback-2026-13-45.csv.p7s`)."""
    match = FEEDBACK_NAME_PATTERN.fullmatch(path.name)
    try:
        return dt.date.fromisoformat(match["date"]) if match else None
    except ValueError:
        return None


def _refusal(path: Path) -> str | None:
    """Why a file in a gemeente's folder is not even read, if so."""
    try:
        if path.is_symlink() or not path.is_file():
            return "not a regular file (symbolic links and folders are not read); send the file"
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__}); send it again"
    if not FEEDBACK_NAME_PATTERN.fullmatch(path.name):
        return "not a feedback file name; name it feedback-<YYYY-MM-DD>.csv.p7s"
    if size > MAX_FILE_BYTES:
        return (
            f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; send the feedback in smaller files"
        )
    return None


def _not_signed(gemeente: str, certs: Path, exc: CmsError) -> str:
    cert = certs / "gemeenten" / f"{gemeente}.crt"
    if not cert.is_file():
        return (
            f"the hub has no certificate for {gemeente} ({cert}) to verify it with; "
            "install the gemeente's certificate there"
        )
    return (
        f"not signed by {gemeente}'s certificate ({_first_line(exc)}); sign it with "
        f"`cri-overlap feedback --gemeente {gemeente}` and the gemeente's own key and certificate"
    )


def _resolve(data_dir: Path, passed: list[tuple[int, _Verified]], checked: Any) -> Any:
    """Every checked row with the signal it is about, if that signal was sent to the gemeente
    of its file (else signal_date is null: the row is ignored). The ledger is read once for the
    whole intake, only the dates the signal ids name."""
    dates = set()
    for signal_id in pc.unique(checked["signal_id"]).to_pylist():
        match = SIGNAL_ID_PATTERN.fullmatch(signal_id)
        try:
            dates.add(dt.datetime.strptime(match["date"], "%Y%m%d").date())
        except (AttributeError, ValueError):
            continue
    files = pa.Table.from_pylist(
        [
            {"file_no": n, "gemeente_code": item.gemeente, "file": item.file, "sha256": item.digest}
            for n, item in passed
        ]
    )
    ledger_files = delivered_files(data_dir, "signals", sorted(dates))
    with connect() as con:
        con.register("checked_rows", checked)
        con.register("intake_files", files)
        if ledger_files:
            create_table(
                con, "feedback/sent_signals", {"ledger_files": [str(p) for p in ledger_files]}
            )
        else:
            create_table(con, "feedback/sent_signals_none", table="sent_signals")
        return relation(con, "feedback/feedback_resolved").to_arrow_table()


def _record(
    layout: Layout,
    run_date: dt.date,
    taken: list[FeedbackFile],
    digests: dict[str, str],
    resolved: Any,
) -> Path:
    """Append one intake folder: the rows about sent signals, then the record of the files
    taken in; built under a hidden name and renamed into place whole."""
    now = dt.datetime.now(dt.UTC)
    intake_id = f"{now:%Y%m%dT%H%M%S%fZ}"
    root = layout.feedback_ledger
    for leftover in root.glob(".*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)  # an intake killed half-way
    work = root / f".{intake_id}.tmp"
    work.mkdir(parents=True)
    with connect() as con:
        con.register("resolved_rows", resolved)
        copy_to(con, "feedback/intake_rows", work / ROWS_FILE, {"intake_id": intake_id})
    write_record(
        work / INTAKE_RECORD,
        {
            "intake_id": intake_id,
            "run_date": run_date.isoformat(),
            "taken_in_at": now.isoformat(timespec="seconds"),
            "files": [dict(outcome.as_dict(), sha256=digests[outcome.file]) for outcome in taken],
        },
    )
    os.rename(work, root / intake_id)
    return root / intake_id


def standing(
    con: duckdb.DuckDBPyConnection, data_dir: Path, run_date: dt.date, *, own_signals: bool
) -> None:
    """Table `feedback_standing`: per signal, the status that counts on `run_date`; about the
    signals of `run_date` itself too when `own_signals` (the monitoring: what is known of every
    signal sent), never for the signal rules (`effects`)."""
    files = feedback_files(data_dir)
    if files:
        before = run_date + dt.timedelta(days=1) if own_signals else run_date
        create_table(
            con,
            "feedback/feedback_standing",
            {
                "feedback_files": [str(p) for p in files],
                "run_date": run_date,
                "signals_before": before,
            },
        )
    else:
        create_table(con, "feedback/feedback_standing_none", table="feedback_standing")


def effects(
    con: duckdb.DuckDBPyConnection, data_dir: Path, run_date: dt.date, policy: dict[str, Any]
) -> None:
    """Tables `feedback_standing` and `feedback_effects` (per person: deceased, helped_on,
    no_help_wanted, not_resident_in) for the run on `run_date`."""
    standing(con, data_dir, run_date, own_signals=False)
    create_table(
        con,
        "feedback/feedback_effects",
        {"exclusion_results": list(policy["feedback"]["exclusion_results"])},
    )


def write_partner_feedback(
    data_dir: Path, folder: Path, outbox: Path, run_date: dt.date, *, delivered: bool
) -> list[Path]:
    """Per partner, `<outbox>/partners/<PARTNER>/feedback.csv` (+ manifest): per month of
    signal_date, the signals delivered in which the partner qualified and how many of them
    stand as picked up or not picked up on `run_date`. The only feedback a partner ever gets:
    counts, never a reason or a result (interfaces.md section 6). `folder` holds tonight's
    tables, counted only when tonight's signals are `delivered`."""
    dates = [d for d in ledger_dates(data_dir) if d < run_date]
    files = delivered_files(data_dir, "signal_partners", dates)
    tonight = Path(folder) / "signal_partners.parquet"
    if delivered and tonight.is_file():
        files.append(tonight)
    if not files:
        return []
    written = []
    with connect() as con:
        create_table(con, "publish/signal_partners", {"ledger_files": [str(p) for p in files]})
        standing(con, data_dir, run_date, own_signals=True)
        since = dates[0] if dates else run_date
        create_table(con, "publish/partner_feedback", {"as_of": run_date, "since": since})
        partners = [r[0] for r in query(con, "feedback/partner_feedback_partners").fetchall()]
        for partner in partners:
            target = write_partner_file(
                con,
                Path(outbox) / "partners" / partner / "feedback.csv",
                ("feedback/partner_feedback_rows", "feedback/partner_feedback_count"),
                partner,
                run_date,
            )
            written.append(target)
    return written


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


# What a retention pass of an earlier version left when killed between its two phases (it
# rewrote the intakes' rows files one by one); finished by `expire`, for a hub upgraded from it.
EXPIRY_READY = ".expiry-ready"
NEW_ROWS = ".feedback.parquet.new"


def expire(layout: Layout, before: dt.date, seen: set[tuple[str, str]] | None = None) -> int:
    """Retention (interfaces.md section 4) and compaction of the feedback ledger, once a night
    after the commit: the gemeenten' files named before `before` that were taken in go from
    `feedback/`, and the ledger is compacted (`compact`) without the feedback about signals of
    run dates before `before` whose effect does not last. Returns the number of ledger rows
    that went. Each intake's record (`intake.json`: the files and their sha256) stays: it is
    how the same bytes are known again, whatever name they come back under."""
    root = layout.feedback_ledger
    if (root / EXPIRY_READY).is_file():
        _replace_expired(root)
    for stray in root.glob(f"[0-9]*/{NEW_ROWS}"):
        stray.unlink()
    _expire_inbox(layout, before, _taken_in(layout.data_dir) if seen is None else seen)
    return compact(layout, before)


def compact(layout: Layout, before: dt.date, as_of: dt.date | None = None) -> int:
    """Fold every intake's rows into one compacted file, so that what a night reads does not
    grow with the feedback kept: of the rows about one signal and one status date only one can
    ever count, on any run date (the latest intake, file and line: rules.md section 5 takes the
    latest status_date and breaks a tie by them), so only that one is kept; a gemeente that
    sends its full list every week adds rows only for the statuses that changed. The retention
    period is applied in the same pass (`sql/feedback/feedback_kept.sql`): of signals of run
    dates before `before` only the status standing on `as_of` (the newest run date) whose
    effect lasts stays, with any status dated after `as_of` (it has not counted yet).

    The new file, with the list of intakes it holds in its metadata, replaces the old one in one
    step; only then do those intakes' rows files go (their `intake.json` stays: it says what
    was taken in). A kill at any moment leaves a ledger that reads the same: before the
    replace the old files are all there, after it the readers skip the rows files of intakes
    the compacted file holds, and the next call removes them. Returns the rows that went."""
    root = layout.feedback_ledger
    compacted = root / COMPACTED
    for leftover in root.glob(f".{COMPACTED}.*.tmp"):
        leftover.unlink()  # a compaction killed before its replace
    held = compacted_intakes(compacted)
    _remove_rows_files(root, held)  # a compaction killed after its replace
    files = feedback_files(layout.data_dir)
    if not files:
        return 0
    merged = held | {p.parent.name for p in files if p != compacted}
    rows_before = sum(pq.read_metadata(p).num_rows for p in files)
    rules = load_policy()["feedback"]
    temporary = temporary_sibling(compacted)
    try:
        with connect() as con:
            copy_to(
                con,
                "feedback/feedback_kept",
                temporary,
                {
                    "feedback_files": [str(p) for p in files],
                    "before": before,
                    "as_of": as_of or newest_date(layout) or before,
                    "lasting_results": [*rules["exclusion_results"], "no_help_wanted"],
                    "lasting_days": max(int(rules["exclusion_days"]), int(rules["cooldown_days"])),
                    "intakes": json.dumps(sorted(merged)),
                },
                options=f"(format parquet, kv_metadata {{{COMPACTED_KEY}: $intakes}})",
            )
        gone = rows_before - pq.read_metadata(temporary).num_rows
        if files == [compacted] and gone == 0:
            return 0  # nothing new, nothing expired: the file stays as it is
        replace_atomically(temporary, compacted)
    finally:
        temporary.unlink(missing_ok=True)
    kill_point("feedback_compacted")
    _remove_rows_files(root, merged)
    if gone:
        log.info("feedback ledger: %d rows superseded or past retention (before %s)", gone, before)
    return gone


def _remove_rows_files(root: Path, intakes: set[str]) -> None:
    for intake in intakes:
        (root / intake / ROWS_FILE).unlink(missing_ok=True)


def _replace_expired(root: Path) -> None:
    for new in root.glob(f"[0-9]*/{NEW_ROWS}"):
        os.replace(new, new.with_name(ROWS_FILE))
    (root / EXPIRY_READY).unlink(missing_ok=True)


def _expire_inbox(layout: Layout, before: dt.date, seen: set[tuple[str, str]]) -> None:
    """The gemeenten' files named before `before` that were taken in (a refused one stays,
    and is reported, until the gemeente replaces or removes it)."""
    for gemeente, path in _inbox_files(layout):
        if (
            not FEEDBACK_NAME_PATTERN.fullmatch(path.name)
            or path.is_symlink()
            or not path.is_file()
        ):
            continue
        # a name without a real date was taken in only before that was checked: it goes too
        named = _name_date(path) or dt.date.min
        if named < before and (gemeente, sha256_file(path)) in seen:
            path.unlink()
