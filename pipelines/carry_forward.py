"""Which staged dataset each partner contributes to a night: tonight's, or an earlier one
carried forward (interfaces.md section 3, "Missing, rejected and stale data").

Every night must show each partner's situation as of that night. A partner that misses a night,
or whose delivery is rejected, would otherwise vanish from the picture and come back the next
night as a "new" partner of thousands of people (escalating and re-signalling them). So for each
expected dataset (`claims` of every partner, `income` of the partners its contract names) the
run uses tonight's accepted dataset, or else the latest accepted one of the
`max_staleness_days` (policy) before it; beyond that the partner is left out and no signals
are delivered that night. An optional dataset (`identities`) is never expected, so never left
out; but when a partner delivered one it is carried forward in the same way, and listed as stale
like the rest ("when delivered they are carried forward like the rest").

The choice depends only on what is staged for this date and earlier dates, so it is the same
whichever order dates are run in; looking back at most `max_staleness_days` dates keeps its cost
independent of the length of the history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipelines.contracts import PARTNER_DATASETS, current_contract
from pipelines.layout import Layout
from pipelines.policy import load_policy
from pipelines.records import read_receipt, receipt_path
from pipelines.reference import partner_codes

DEFAULT_MAX_STALENESS_DAYS = 7


@cache
def expected_datasets() -> tuple[tuple[str, str], ...]:
    """(partner, dataset) expected every night: from the contracts' `partners` property."""
    return _datasets(optional=False)


@cache
def optional_datasets() -> tuple[tuple[str, str], ...]:
    """(partner, dataset) a partner may deliver or not (identities: a partner without the
    gemeenten's certificates has none): carried forward when there is one, never missing."""
    return _datasets(optional=True)


def _datasets(*, optional: bool) -> tuple[tuple[str, str], ...]:
    found = []
    for dataset in PARTNER_DATASETS:
        if bool(current_contract(dataset).custom_property("optional")) != optional:
            continue
        partners = current_contract(dataset).custom_property("partners") or partner_codes()
        found += [(partner, dataset) for partner in partners]
    return tuple(sorted(found, key=lambda pd: (pd[1] != "claims", pd)))


def max_staleness_days() -> int:
    """How many days a dataset may be carried forward (policy `delivery.max_staleness_days`)."""
    delivery = load_policy().get("delivery") or {}
    return int(delivery.get("max_staleness_days", DEFAULT_MAX_STALENESS_DAYS))


@dataclass(frozen=True)
class Chosen:
    """The dataset a partner contributes to one run date."""

    partner: str
    dataset: str
    status: str  # "fresh" (delivered for this date), "stale" (carried forward), "left_out"
    extract_date: dt.date | None = None
    staged: Path | None = None
    sha256: str | None = None

    @property
    def label(self) -> str:
        return f"{self.partner}/{self.dataset}"

    def describe(self) -> str:
        """e.g. `CJIB/claims 2026-11-20` (stale) or `CJIB/claims` (left out)."""
        return f"{self.label} {self.extract_date}" if self.extract_date else self.label


@dataclass(frozen=True)
class Selection:
    """Per partner and dataset, what a night uses. `chosen` holds every expected dataset (the
    link's input); `optional` the optional datasets a partner has within the window (the
    signal files' sealed identities), which the analytic tables do not depend on."""

    run_date: dt.date
    max_staleness_days: int
    chosen: tuple[Chosen, ...]
    optional: tuple[Chosen, ...] = ()

    def files(self, dataset: str) -> list[Path]:
        """The staged Parquet files of `dataset` to use, one per contributing partner."""
        return [
            c.staged
            for c in (*self.chosen, *self.optional)
            if c.dataset == dataset and c.staged is not None
        ]

    @property
    def stale(self) -> list[Chosen]:
        return [c for c in (*self.chosen, *self.optional) if c.status == "stale"]

    @property
    def left_out(self) -> list[Chosen]:
        return [c for c in self.chosen if c.status == "left_out"]

    @property
    def complete(self) -> bool:
        """Every expected dataset is there (fresh or carried forward within the limit)."""
        return not self.left_out

    def fingerprint(self) -> list[list[str]]:
        """What was chosen for the link, as JSON-friendly rows: a later date whose recorded
        fingerprint differs from a fresh selection must be derived again (the optional datasets
        change no table, and later dates deliver nothing when derived again)."""
        return [
            [c.partner, c.dataset, c.status, str(c.extract_date or ""), c.sha256 or ""]
            for c in self.chosen
        ]


def select(data_dir: Path, run_date: dt.date) -> Selection:
    """Choose, per expected dataset, tonight's staged data or the latest within the limit;
    likewise per optional dataset a partner has delivered."""
    layout, limit = Layout(data_dir), max_staleness_days()
    chosen = [
        _latest(layout, run_date, limit, partner, dataset) or Chosen(partner, dataset, "left_out")
        for partner, dataset in expected_datasets()
    ]
    optional = [
        found
        for partner, dataset in optional_datasets()
        if (found := _latest(layout, run_date, limit, partner, dataset)) is not None
    ]
    return Selection(run_date, limit, tuple(chosen), tuple(optional))


def _latest(
    layout: Layout, run_date: dt.date, limit: int, partner: str, dataset: str
) -> Chosen | None:
    """The partner's accepted dataset of `run_date`, else of the latest of the `limit` days
    before it; None when there is none."""
    for age in range(limit + 1):
        day = run_date - dt.timedelta(days=age)
        staged = layout.staging_date(day) / partner / f"{dataset}.parquet"
        receipt = read_receipt(receipt_path(staged))
        # the receipt is written last: it says the dataset was staged (its Parquet may have
        # been evicted since; it is staged again before use: pipelines.evict)
        if receipt is not None:
            status = "fresh" if age == 0 else "stale"
            return Chosen(partner, dataset, status, day, staged, receipt.get("sha256"))
    return None
