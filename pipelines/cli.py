"""`cri-overlap`: the command line. A thin face over the stage functions in `pipelines/`.

Errors a person can act on are printed as one line naming the file, the rule and the remedy,
never as a traceback. Long work shows a progress bar on stderr unless `--quiet`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from pipelines.errors import EXIT_FAILED, EXIT_OK, EXIT_REJECTIONS, EXIT_USAGE, CriError, explain
from pipelines.ingest import IngestOutcome, printable
from pipelines.lock import DataDirBusy
from pipelines.plans import PlanSummary
from pipelines.pseudonymise import pseudonymise_extract
from pipelines.resource_faults import describe as describe_fault
from pipelines.resource_faults import one_line
from pipelines.run import RunSummary
from pipelines.settings import Settings
from privacy.keys import PURPOSES, load_key_file, new_key, write_key_file

# typer (0.2x) vendors click and exports no name for its usage error: take it from BadParameter.
USAGE_ERROR: type[Exception] = typer.BadParameter.__mro__[1]

app = typer.Typer(
    help="cri-overlap: link pseudonymised CRI arrears extracts, propose joint payment plans, "
    "signal gemeenten.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(
    help="Key files (linkage keys for partners, the hub key for the hub).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
certs_app = typer.Typer(
    help="Certificates for signed, encrypted signal files.", no_args_is_help=True
)
app.add_typer(certs_app, name="certs")

out = Console()
err = Console(stderr=True)


class CliFailure(CriError):
    """A failure reported as one line with a chosen exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = code


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


DateOption = Annotated[
    dt.date, typer.Option(parser=_parse_date, metavar="YYYY-MM-DD", help="The extract date.")
]


def _parse_run_date(value: str) -> dt.date:
    """A run date: no later than today (an extract from the future cannot exist yet)."""
    date = _parse_date(value)
    if date > dt.date.today():
        raise typer.BadParameter(f"{value} is after today ({dt.date.today()})")
    return date


RunDateOption = Annotated[
    dt.date,
    typer.Option(
        parser=_parse_run_date, metavar="YYYY-MM-DD", help="The extract date (today or earlier)."
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


class _QuietLibraries(logging.Filter):
    """GX logs internals at INFO and pins one of its loggers to INFO when imported; a user needs
    only its warnings. Our own loggers pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith("great_expectations")


@app.callback()
def _configure(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
) -> None:
    handler = RichHandler(console=err, show_path=False, show_time=False)
    handler.addFilter(_QuietLibraries())
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
    )


@contextmanager
def _progress(quiet: bool, description: str, total: int):
    """A progress bar on stderr (or nothing with --quiet); yields an `advance_to(n)` callable."""
    if quiet:
        yield lambda _done: None
        return
    if not err.is_terminal:  # a log, not a screen: one line when done
        begin = time.perf_counter()
        yield lambda _done: None
        out.print(f"[dim]{description}: done in {time.perf_counter() - begin:.1f} s[/dim]")
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)


@keys_app.command("new")
def keys_new(
    purpose: Annotated[str, typer.Option(help=f"One of: {', '.join(PURPOSES)}.")],
    out_path: Annotated[Path, typer.Option("--out", help="Key file to create (mode 0600).")],
) -> None:
    """Write a new key file. The secret is never printed."""
    if purpose not in PURPOSES:
        raise typer.BadParameter(f"--purpose must be one of {', '.join(PURPOSES)}")
    key = new_key(purpose)
    write_key_file(key, out_path)
    out.print(f"wrote {purpose} key {key.key_id} to {out_path}")


@app.command()
def synth(
    date: DateOption,
    persons: Annotated[int, typer.Option(min=1, help="Persons with open claims.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the raw extracts.")],
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    quiet: QuietOption = False,
) -> None:
    """Realistic synthetic raw extracts (with BSNs) for every partner, plus TSL income."""
    from pipelines.synth import synth as run_synth

    with _progress(quiet, "synthesising persons", persons) as advance:
        result = run_synth(
            out_dir, extract_date=date, persons=persons, seed=seed, on_progress=advance
        )
    if not quiet:
        table = Table("partner", "dataset", "rows", "file", title=f"raw extracts, {date}")
        for (partner, dataset), (path, rows) in result.files.items():
            table.add_row(partner, dataset, f"{rows:,}", str(path))
        out.print(table)


@app.command()
def pseudonymise(
    key: Annotated[Path, typer.Option(help="The partners' linkage key file.")],
    partner: Annotated[str, typer.Option(help="Partner code, e.g. CJIB.")],
    date: DateOption,
    raw: Annotated[Path, typer.Option("--in", help="Raw extract: claims or income, csv/parquet.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Delivery folder for data + manifest.")],
    gemeente_certs: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the gemeenten's certificates <GMxxxx>.crt (public): with a claims "
            "extract, also write the sealed identities (identities.*, identity-keys/)."
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Partner side: hash the BSNs of one raw extract and write data + manifest (and, given
    gemeente certificates, each person's BSN sealed for the gemeente of the claim)."""
    linkage_key = load_key_file(key, "linkage")
    result = pseudonymise_extract(
        raw,
        out_dir,
        key=linkage_key,
        partner=partner,
        extract_date=date,
        gemeente_certs=gemeente_certs,
    )
    if not quiet:
        out.print(f"{partner} {result.dataset}: {result.rows_written:,} rows -> {result.data_path}")
        if result.rows_rejected:
            reasons = ", ".join(f"{k} {v}" for k, v in result.rejected_by_reason.items())
            out.print(
                f"  {result.rows_rejected:,} rows with an invalid BSN ({reasons}) "
                f"-> {result.reject_path}"
            )
        if result.identities is not None:
            sealed = result.identities
            out.print(
                f"{partner} identities: {sealed.rows:,} sealed for {sealed.gemeenten:,} "
                f"gemeenten -> {sealed.data_path}"
            )


DEFAULT_WORKERS = os.cpu_count() or 1
WorkersOption = Annotated[
    int, typer.Option(min=1, help="Datasets checked in parallel (default: one per CPU core).")
]
CertsOption = Annotated[
    Path | None,
    typer.Option(
        help="Certificates: hub.crt, hub.key, gemeenten/<GM>.crt "
        "(default $CRI_CERTS_DIR or <data-dir>/certs)."
    ),
]
DataDirOption = Annotated[
    Path | None, typer.Option(help="Data directory (default ./data or $CRI_DATA_DIR).")
]
LandingOption = Annotated[
    Path | None, typer.Option(help="Landing zone (default <data-dir>/landing or $CRI_LANDING_DIR).")
]


def _print_outcome(outcome: IngestOutcome) -> None:
    style = "red" if outcome.rejected else "green"
    mark = "✗" if outcome.rejected else "✓"
    out.print(
        f"[{style}]{mark}[/{style}] {escape(outcome.summary())}", highlight=False, soft_wrap=True
    )
    if outcome.quarantine_path:
        out.print(
            f"    moved to {escape(printable(str(outcome.quarantine_path)))}",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def ingest(
    date: RunDateOption,
    data_dir: DataDirOption = None,
    landing: LandingOption = None,
    workers: WorkersOption = DEFAULT_WORKERS,
    quiet: QuietOption = False,
) -> None:
    """Accept or reject each dataset delivered for one date (the first stage of `run`).

    Exit 0 when every dataset is accepted, 3 when one or more were rejected (moved to the
    quarantine with reason.json), 1 when nothing could be checked.
    """
    from pipelines.ingest import ingest_date
    from pipelines.lock import data_dir_lock
    from pipelines.recovery import recover

    settings = Settings.resolve(data_dir=data_dir, landing_dir=landing, workers=workers)
    with data_dir_lock(settings.data_dir, what=f"ingest --date {date}"):
        recover(settings.data_dir, settings.landing)
        outcomes = ingest_date(
            date,
            data_dir=settings.data_dir,
            landing=settings.landing,
            on_dataset=None if quiet else _print_outcome,
            workers=workers,
        )
    if not outcomes:
        raise CliFailure(
            f"{settings.layout.landing_date(date)}: no deliveries "
            "for this date; check --date and --landing"
        )
    if any(o.rejected for o in outcomes):
        raise typer.Exit(EXIT_REJECTIONS)


@app.command("check-delivery")
def check_delivery_command(
    folder: Annotated[
        Path,
        typer.Argument(
            help="A partner folder (data + manifests) or a date folder of partner folders."
        ),
    ],
) -> None:
    """Partner side: run every hub check on a delivery before sending it; loads nothing.

    Exit 0 when every dataset passes, 3 when one or more would be rejected.
    """
    from pipelines.ingest import check_delivery

    outcomes = check_delivery(folder)
    if not outcomes:
        raise CliFailure(
            f"{folder}: no datasets found (expected claims/income files with manifests)"
        )
    for outcome in outcomes:
        _print_outcome(outcome)
        for line in outcome.detail_lines():  # every broken rule, not only the first
            out.print(f"    {escape(line)}", highlight=False, soft_wrap=True)
    if any(o.rejected for o in outcomes):
        raise typer.Exit(EXIT_REJECTIONS)


@app.command()
def run(
    date: RunDateOption,
    data_dir: DataDirOption = None,
    landing: LandingOption = None,
    hub_key: Annotated[
        Path | None, typer.Option(help="Hub key file (default $CRI_HUB_KEY_FILE).")
    ] = None,
    workers: WorkersOption = DEFAULT_WORKERS,
    certs: CertsOption = None,
    quiet: QuietOption = False,
) -> None:
    """The nightly pipeline for one extract date: ingest, link, plans, signals, publish.

    Exit 0 all datasets accepted and published; 3 published, but one or more datasets were
    rejected, missing or stale (carried forward); 1 failed, nothing published; 2 usage error.
    """
    settings = Settings.resolve(
        data_dir=data_dir,
        landing_dir=landing,
        hub_key_file=hub_key,
        certs_dir=certs,
        workers=workers,
    )
    summary = _run_with_progress(date, settings, quiet)
    if not quiet:
        link = summary.link
        out.print(
            f"linked {link.claims:,} claims of {link.persons:,} persons; "
            f"{link.persons_multi:,} in arrears at 2+ partners"
        )
        out.print(overlap_table(summary.snapshot, date))
        out.print(plans_table(summary.plans))
        _print_feedback(summary)
        _print_signals(summary)
        out.print(f"analysts' database: {summary.snapshot}")
        out.print(f"run report: {summary.report}")
    for line in incomplete_lines(summary):
        err.print(line, highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(summary.exit_code)


def incomplete_lines(summary: RunSummary) -> list[str]:
    """What was rejected, carried forward, left out or not delivered tonight: one line each."""
    lines = []
    if not summary.outcomes:
        lines.append(
            f"no deliveries found for {summary.run_date} (check --landing or CRI_LANDING_DIR): "
            "every dataset was carried forward or left out"
        )
    if summary.rejected:
        names = ", ".join(printable(f"{o['partner']}/{o['dataset']}") for o in summary.rejected)
        lines.append(
            f"published, but rejected: {names} (see quarantine/{summary.run_date.isoformat()}/)"
        )
    if summary.selection is not None:
        stale = summary.selection.stale
        if stale:
            lines.append(
                "stale (carried forward from an earlier extract): "
                + ", ".join(c.describe() for c in stale)
            )
        if summary.selection.left_out:
            lines.append(
                f"left out (nothing accepted within {summary.selection.max_staleness_days} days): "
                + ", ".join(c.label for c in summary.selection.left_out)
            )
    if summary.delivery is not None and summary.delivery.note:
        lines.append(summary.delivery.note)
    if summary.feedback is not None:
        lines += [f.line() for f in summary.feedback.refused]
    if summary.rederived:
        lines.append(
            "later dates derived again (their carried-forward data changed): "
            + ", ".join(map(str, summary.rederived))
        )
    return lines


def _print_feedback(summary: RunSummary) -> None:
    """The feedback files taken in tonight (refused ones go to stderr with the other
    problems of the night, `incomplete_lines`)."""
    intake = summary.feedback
    if intake is None or not intake.files:
        return
    for outcome in intake.files:
        if outcome.status != "refused":
            out.print(outcome.line(), highlight=False, soft_wrap=True, markup=False)


def feedback_effect_text(counts: dict[str, int]) -> str:
    """What the gemeenten' feedback changed on the run, for the run's output line; empty when
    nothing (rules.md section 5)."""
    parts = [
        (counts.get("excluded_after_help", 0), "excluded after help reported by a gemeente"),
        (counts.get("suppressed_no_help_wanted", 0), "held back by the longer cool-down"),
        (counts.get("held_deceased", 0), "held back: reported deceased"),
        (counts.get("held_not_resident", 0), "held back: not resident in any gemeente left"),
        (counts.get("rerouted", 0), "re-routed after not_resident"),
    ]
    return "; ".join(f"{n:,} {text}" for n, text in parts if n)


def _print_signals(summary: RunSummary) -> None:
    signals, delivery = summary.signals, summary.delivery
    reasons = ", ".join(f"{k} {v:,}" for k, v in signals.by_reason.items())
    out.print(
        f"signals: {signals.signals:,} for {len(signals.gemeenten)} gemeenten ({reasons}); "
        f"{signals.excluded:,} excluded (debt assistance), "
        f"{signals.suppressed_repeats:,} held back by the cool-down",
        soft_wrap=True,
    )
    effects = feedback_effect_text(signals.feedback)
    if effects:
        out.print(f"feedback from gemeenten: {effects}", soft_wrap=True, markup=False)
    if not delivery.signals_delivered:
        out.print(f"signal files NOT delivered: {delivery.note}", soft_wrap=True, markup=False)
        return
    out.print(
        f"delivered signed and encrypted to {len(delivery.delivered)} gemeenten"
        + (
            f"; {len(delivery.waiting)} waiting ({delivery.reason}): their signals stay in "
            f"{signals.outbox}"
            if delivery.waiting
            else ""
        ),
        soft_wrap=True,
    )
    counts = list(delivery.identities.values())
    if counts:
        total, sealed = sum(n for n, _ in counts), sum(m for _, m in counts)
        out.print(
            f"{sealed:,} of {total:,} signals carry a sealed identity (the gemeente can find "
            f"the person); {total - sealed:,} without (no partner sealed one for that gemeente)"
        )


def _run_with_progress(
    run_date: dt.date, settings: Settings, quiet: bool, *, show_datasets: bool = True
) -> RunSummary:
    """`run_night` with its progress shown: a live line per stage on a terminal (with the
    datasets checked so far during ingest), one line per finished stage otherwise; a failure of
    a stage before publish says that nothing was published."""
    from pipelines.run import run_night

    progress = StageProgress(quiet, show_datasets=show_datasets)
    try:
        with progress:
            return run_night(
                run_date,
                settings=settings,
                on_dataset=None if quiet else progress.dataset,
                on_stage=None if quiet else progress.done,
                on_stage_start=None if quiet else progress.start,
            )
    except CriError as exc:
        if isinstance(exc, DataDirBusy | CliFailure) or not getattr(exc, "nothing_published", True):
            raise
        raise CliFailure(f"{exc.one_line()}; nothing published") from exc


class StageProgress:
    """Where a night's run is: on a terminal a transient bar over the stages (stderr), and on
    any output one line per finished stage (stdout), so that a log of `make demo` or a cron job
    shows progress too."""

    def __init__(self, quiet: bool, *, show_datasets: bool = True) -> None:
        from pipelines.stages import STAGE_NAMES

        self.show_datasets = show_datasets
        self.names = STAGE_NAMES
        self.live = not quiet and err.is_terminal
        self.progress: Progress | None = None
        self.task: Any = None
        self.datasets = 0

    def __enter__(self) -> StageProgress:
        if self.live:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            self.progress.__enter__()
            self.task = self.progress.add_task("starting", total=len(self.names))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)

    def start(self, name: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=f"{name}…")

    def dataset(self, outcome: IngestOutcome) -> None:
        self.datasets += 1
        if self.show_datasets:
            _print_outcome(outcome)
        if self.progress is not None:
            self.progress.update(self.task, description=f"ingest: {self.datasets} datasets checked")

    def done(self, name: str, seconds: float) -> None:
        position = self.names.index(name) + 1
        out.print(f"[dim][{position}/{len(self.names)}] {name} done in {seconds:.1f} s[/dim]")
        if self.progress is not None:
            self.progress.update(self.task, completed=position)


def funnel_table(snapshot: Path) -> Table:
    """What became of the signals, nationally (the snapshot's signal_funnel, 'ALL' rows)."""
    import duckdb

    from pipelines.sql import query

    with duckdb.connect(str(snapshot), read_only=True) as con:
        result = query(con, "cli/funnel")
        measures = [d[0].replace("_", " ") for d in result.description][1:]
        rows = result.fetchall()
    # one column per month, so that the table fits a terminal however many measures
    table = Table(
        "month signalled",
        *(f"{month:%Y-%m}" for month, *_ in rows),
        title="what became of the signals (national)",
    )
    for position, measure in enumerate(measures, start=1):
        table.add_row(measure, *(f"{row[position]:,}" for row in rows))
    return table


def plans_table(plans: PlanSummary) -> Table:
    """Plan outcomes and the monthly amount each partner would receive."""
    table = Table(
        "outcome",
        "proposals",
        "partner",
        "monthly total (EUR)",
        title=f"joint payment plans {plans.run_date} (rules v{plans.rules_version}); "
        f"{plans.referral_share:.1%} need referral to debt assistance",
    )
    partners = list(plans.monthly_cents_by_partner.items())
    outcomes = list(plans.outcomes.items())
    for index in range(max(len(partners), len(outcomes))):
        outcome, count = outcomes[index] if index < len(outcomes) else ("", None)
        partner, cents = partners[index] if index < len(partners) else ("", None)
        table.add_row(
            outcome,
            f"{count:,}" if count is not None else "",
            partner,
            f"{cents / 100:,.2f}" if cents is not None else "",
        )
    return table


def overlap_table(snapshot: Path, run_date: dt.date) -> Table:
    """Persons by number of partners with arrears, from the published snapshot."""
    import duckdb

    from pipelines.sql import query

    with duckdb.connect(str(snapshot), read_only=True) as con:
        rows = query(con, "cli/overlap_by_partners", {"run_date": run_date}).fetchall()
        pairs = [
            (pair, persons)
            for persons, pair in query(con, "cli/top_pairs", {"run_date": run_date}).fetchall()
        ]
    table = Table(
        "partners with arrears", "persons", "top pairs", "persons", title=f"overlap {run_date}"
    )
    for index, (n_partners, persons) in enumerate(rows):
        pair, pair_persons = pairs[index] if index < len(pairs) else ("", None)
        table.add_row(
            str(n_partners),
            f"{persons:,}",
            pair,
            f"{pair_persons:,}" if pair_persons is not None else "",
        )
    return table


@certs_app.command("demo")
def certs_demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Hub side: CA, hub pair, gemeente certificates.")
    ],
    gemeente_side: Annotated[
        Path,
        typer.Option(
            help="Where the gemeenten's private keys go (in real life: at each gemeente)."
        ),
    ],
    gemeenten: Annotated[str, typer.Option(help="'all' or comma-separated codes.")] = "all",
    quiet: QuietOption = False,
) -> None:
    """A demo CA, hub signing pair and one certificate per gemeente (for demos and tests)."""
    from pipelines.reference import gemeenten as reference_gemeenten
    from privacy.cms import create_demo_certificates

    codes = (
        [c for c, _, _ in reference_gemeenten()]
        if gemeenten == "all"
        else [c.strip() for c in gemeenten.split(",") if c.strip()]
    )
    with _progress(quiet, "issuing certificates", len(codes)) as advance:
        create_demo_certificates(out_dir, gemeente_side, codes, on_progress=advance)
    if not quiet:
        out.print(
            f"CA, hub and {len(codes)} gemeente certificates in {out_dir}; gemeente keys "
            f"in {gemeente_side}"
        )


@app.command("open-signals")
def open_signals(
    message: Annotated[Path, typer.Argument(help="signals.csv.p7m from the hub.")],
    key: Annotated[Path, typer.Option(help="The gemeente's private key (PEM).")],
    cert: Annotated[Path, typer.Option(help="The gemeente's certificate (PEM).")],
    ca: Annotated[Path, typer.Option(help="The CA certificate that issued the hub's.")],
    out_path: Annotated[Path | None, typer.Option("--out", help="Where to write the CSV.")] = None,
    hub_cert: Annotated[
        Path | None,
        typer.Option(help="The hub's signing certificate (default: hub.crt beside --ca)."),
    ] = None,
    gemeente: Annotated[
        str | None,
        typer.Option(help="Your gemeente code (default: from the certificate's name)."),
    ] = None,
) -> None:
    """Gemeente side: verify the hub's signed manifest, decrypt and verify the signals, open the
    sealed identities, write the CSV with a `bsn` column (mode 0600). Any refusal: one line,
    exit 1, nothing written."""
    from pipelines.gemeente import open_signal_file

    opened = open_signal_file(
        message, key=key, cert=cert, ca=ca, out=out_path, hub_cert=hub_cert, gemeente=gemeente
    )
    out.print(
        f"verified: signed by the hub, {opened.rows:,} signals for {opened.gemeente} on "
        f"{opened.run_date} ({opened.with_identity:,} with a BSN), manifest signed and "
        f"sha256 matches -> {opened.path}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )


@app.command("feedback")
def feedback(
    gemeente: Annotated[str, typer.Option(help="Your gemeente code, GM and 4 digits.")],
    source: Annotated[
        Path,
        typer.Option("--in", help="The feedback CSV: codes or DDAS labels (docs/feedback.md)."),
    ],
    key: Annotated[Path, typer.Option(help="The gemeente's private key (PEM).")],
    cert: Annotated[Path, typer.Option(help="The gemeente's certificate (PEM).")],
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to write (default: feedback-<today>.csv.p7s beside --in)."
        ),
    ] = None,
) -> None:
    """Gemeente side: check a feedback CSV, map DDAS labels to codes and sign it for the hub
    (CMS SignedData, DER, content attached). Any refusal: one line, exit 1, nothing written."""
    from pipelines.feedback_file import load_feedback, sign_feedback

    target = sign_feedback(gemeente, source, key, cert, out=out_path)
    rows = load_feedback(source).count("\n") - 1  # the header line is not a row
    out.print(
        f"signed: {rows:,} feedback rows for {gemeente} -> {target}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )


@app.command()
def demo(
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory (default ./data or $CRI_DATA_DIR).")
    ] = None,
    persons: Annotated[int, typer.Option(min=1)] = 20_000,
    date: Annotated[
        dt.date | None,
        typer.Option(
            parser=_parse_date, metavar="YYYY-MM-DD", help="Extract date (default today)."
        ),
    ] = None,
    seed: int = 7,
    quiet: QuietOption = False,
) -> None:
    """Two nights of synth + pseudonymise + every stage on a small default, with feedback from
    a few gemeenten between them; then a summary."""
    from pipelines.demo import (
        FIRST_NIGHT_BEFORE,
        deliver_demo_night,
        demo_settings,
        ensure_demo_certificates,
        feedback_gemeenten,
        send_demo_feedback,
    )
    from pipelines.reference import gemeenten as reference_gemeenten

    settings = demo_settings(Settings.resolve(data_dir=data_dir).data_dir)
    root = settings.data_dir
    extract_date = date or dt.date.today()
    first_date = extract_date - dt.timedelta(days=FIRST_NIGHT_BEFORE)
    with _progress(
        quiet, "demo: issuing gemeente certificates (first run only)", len(reference_gemeenten())
    ) as advance:
        ensure_demo_certificates(root, on_progress=advance)
    with _progress(
        quiet, f"demo night 1 ({first_date}): synthesising and pseudonymising", persons
    ) as advance:
        deliver_demo_night(
            root, persons=persons, extract_date=first_date, seed=seed, on_progress=advance
        )
    first = _run_with_progress(first_date, settings, quiet, show_datasets=False)
    out.print(f"demo night 1, {first_date}:")
    _print_signals(first)
    sent = feedback_gemeenten(first)
    files = send_demo_feedback(root, first, sent)
    out.print(
        f"between the nights, {len(files)} gemeenten opened their signal files and sent back "
        "what became of each signal (signed feedback): "
        + ", ".join(f"{code} ({n:,} signals)" for code, n in sent),
        soft_wrap=True,
    )
    with _progress(
        quiet, f"demo night 2 ({extract_date}): synthesising and pseudonymising", persons
    ) as advance:
        landing, deliveries = deliver_demo_night(
            root, persons=persons, extract_date=extract_date, seed=seed, on_progress=advance
        )
    night = _run_with_progress(extract_date, settings, quiet, show_datasets=False)
    table = Table(
        "partner",
        "dataset",
        "rows delivered",
        "invalid BSNs",
        "hub intake",
        title=f"demo night {extract_date} ({persons:,} persons)",
    )
    intake = {(o["partner"], o["dataset"]): o for o in night.outcomes}
    for result in deliveries:
        outcome = intake.get((result.partner, result.dataset))
        if outcome is None:
            verdict = "not ingested"
        else:
            verdict = (
                f"rejected: {outcome['rule']}"
                if outcome["status"] == "rejected"
                else outcome["status"]
            )
        table.add_row(
            result.partner,
            result.dataset,
            f"{result.rows_written:,}",
            f"{result.rows_rejected:,}",
            verdict,
        )
    out.print(table)
    out.print(overlap_table(night.snapshot, extract_date))
    out.print(plans_table(night.plans))
    _print_feedback(night)
    _print_signals(night)
    out.print(funnel_table(night.snapshot))
    out.print(f"landing zone: {landing}")
    out.print(f"analysts' database: {night.snapshot}")
    _print_demo_next_steps(night, settings)


def _show_gemeente_opening(night: RunSummary, code: str, keys: Path, folder: Path) -> None:
    """The demo's last step: one gemeente opens its file (its own key; the hub could not) and
    finds the persons it is told about by BSN. Synthetic BSNs only: this is the gemeente's
    side, on the demo's machine."""
    import polars as pl

    from pipelines.gemeente import open_signal_file

    opened = open_signal_file(
        night.signals.outbox / code / "signals.csv.p7m",
        key=keys / f"{code}.key",
        cert=keys / f"{code}.crt",
        ca=keys / "ca.crt",
        out=folder / f"signals-{night.run_date}.csv",
    )
    rows = pl.read_csv(opened.path, separator=";", infer_schema=False, n_rows=3)
    table = Table(
        "signal_id",
        "reasons",
        "arrears (EUR)",
        "bsn",
        title=f"{code} opened its signal file: {opened.rows:,} signals, "
        f"{opened.with_identity:,} with a BSN (first 3)",
    )
    for row in rows.iter_rows(named=True):
        euros = f"{int(row['arrears_cents']) / 100:,.2f}"
        table.add_row(row["signal_id"], row["reasons"], euros, row["bsn"] or "-")
    out.print(table)
    out.print(f"  -> {opened.path} (mode 0600)", soft_wrap=True, highlight=False)


def _print_demo_next_steps(night: RunSummary, settings: Settings) -> None:
    """How to open a gemeente's file, and how to run the next night on the demo's hub."""
    delivered = night.delivery.delivered
    gemeente_side = settings.layout.gemeente_side
    if delivered:
        code = "GM0363" if "GM0363" in delivered else delivered[0]
        keys = settings.layout.gemeente_keys
        _show_gemeente_opening(night, code, keys, gemeente_side / code)
        out.print(
            f"open {code}'s signals yourself, as that gemeente would:\n  cri-overlap open-signals "
            f"{night.signals.outbox / code / 'signals.csv.p7m'} --key {keys / code}.key "
            f"--cert {keys / code}.crt --ca {keys / 'ca.crt'} "
            f"--out {gemeente_side / code / f'signals-{night.run_date}.csv'}",
            soft_wrap=True,
            highlight=False,
        )
        out.print(
            f"send {code}'s feedback on its signals (docs/feedback.md), as that gemeente would:\n"
            f"  cri-overlap feedback --gemeente {code} --in FEEDBACK.csv --key {keys / code}.key "
            f"--cert {keys / code}.crt --out "
            f"{settings.layout.feedback / code / f'feedback-{dt.date.today()}.csv.p7s'}",
            soft_wrap=True,
            highlight=False,
        )
    out.print(
        "run a night on this hub yourself:\n  cri-overlap run --date YYYY-MM-DD "
        f"--data-dir {settings.data_dir} --hub-key {settings.hub_key_file} "
        f"--certs {settings.certs}",
        soft_wrap=True,
        highlight=False,
    )
    out.print(f"run report (open in a browser): {night.report.resolve()}")


def main() -> None:
    """Entry point. Typer handles usage errors (exit 2) and --help; failures a user can fix
    (`pipelines.errors.explain`) become one line and their exit code; so do resource faults
    (disk full, file size or open-file limits, permissions, out of memory): one line saying what
    happened and what to do. Anything else is a bug and keeps its traceback."""

    try:
        code = app(standalone_mode=False)
        _exit(code if isinstance(code, int) else EXIT_OK)
    except USAGE_ERROR as usage:
        # One line, like every other error (typer would draw a multi-line panel). A group
        # called without a command has printed its help already and has nothing to add.
        message = one_line(usage.format_message())
        if message:
            command = usage.ctx.command_path if usage.ctx is not None else "cri-overlap"
            sys.stderr.write(f"error: {message} (see: {command} --help)\n")
        _exit(EXIT_USAGE)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        _exit(EXIT_FAILED)
    except SystemExit as done:
        _exit(done.code if isinstance(done.code, int) else EXIT_FAILED if done.code else EXIT_OK)
    except Exception as exc:
        explained = explain(exc)
        if explained is not None:  # a failure the user can act on (pipelines.errors)
            err.print(f"error: {one_line(exc)}", highlight=False, soft_wrap=True, markup=False)
            _exit(explained[1])
        _fail_on_resource_fault(exc)
        raise
    except BaseException as exc:  # a Rust panic (pyo3) is a BaseException
        if not isinstance(exc, KeyboardInterrupt):
            _fail_on_resource_fault(exc)
        raise


def _fail_on_resource_fault(exc: BaseException) -> None:
    """Exit with one line when `exc` is a resource fault (disk full, limits, memory); return
    otherwise (a bug: the caller re-raises it with its traceback)."""
    line = describe_fault(exc)
    if line is not None:
        # Plain write, not rich: printing must not need an import, a file or much memory.
        sys.stderr.write(f"error: {line}\n")
        _exit(EXIT_FAILED)


def _exit(code: int) -> None:
    """End the process without the interpreter's final teardown.

    Great Expectations keeps DuckDB objects referenced until shutdown, and DuckDB's bindings then
    print a page of "nanobind: leaked ..." lines on stderr. It is harmless (our connections are
    closed, our files were written atomically and flushed), but it buries the one-line result a
    user reads, so the CLI flushes its streams and leaves directly.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
