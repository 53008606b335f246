"""Synthetic raw partner extracts (with BSNs) for demos, tests and benchmarks.

Deterministic by seed: chunk `i` draws from `default_rng([seed, i])`, so the same seed and
person count give the same bytes. National scale (2,000,000 persons) runs in bounded memory:
persons are generated and appended to the partner files a chunk at a time. The population's
shape (partner sizes, overlap, amounts, stages) comes from `synth_profile.yaml`, which cites its
sources; partner codes, claim types and gemeenten come from the reference data.

BSNs are unique and pass the elfproef: 8-digit bases are walked through a bijection of
0..10^8-1 (an odd multiplier not divisible by 5 is invertible mod 10^8), and a base is kept when
its check digit exists, so no two persons can share a BSN.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

import numpy as np
import polars as pl
import yaml

from pipelines.dialect import SEPARATOR
from pipelines.reference import claim_types, gemeenten, partner_codes

log = logging.getLogger(__name__)

CHUNK_PERSONS = 100_000
PROFILE_PATH = Path(__file__).with_name("synth_profile.yaml")
GENERATOR_VERSION = 1

_BASES = 10**8
_BASE_MULTIPLIER = 48_271  # odd and not divisible by 5: a bijection of 0..10^8-1
_ELFPROEF_WEIGHTS = np.array([9, 8, 7, 6, 5, 4, 3, 2], dtype=np.int64)
_EARLIEST = np.datetime64("1990-01-01")
_STAGES_WITH_FULL_ARREARS = ("final_notice", "bailiff", "garnishment")

CLAIM_COLUMNS = (
    "bsn",
    "claim_ref",
    "claim_type",
    "imposed_cents",
    "outstanding_cents",
    "arrears_cents",
    "arrears_since",
    "stage",
    "debt_assistance",
    "gemeente_code",
)
INCOME_COLUMNS = ("bsn", "household_type", "net_income_cents", "income_month")


@dataclass(frozen=True)
class SynthResult:
    """Files written: (partner, dataset) -> (path, rows)."""

    out_dir: Path
    persons: int
    files: dict[tuple[str, str], tuple[Path, int]]


@cache
def load_profile() -> dict[str, Any]:
    """The population profile (YAML)."""
    return yaml.safe_load(PROFILE_PATH.read_text("utf-8"))


def _normalised(weights: list[float]) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()


def valid_bsns(first_candidate: int, needed: int, offset: int) -> tuple[np.ndarray, int]:
    """`needed` unique valid BSNs (as integers) from candidate index `first_candidate` on.

    Returns the BSNs and the next unused candidate index, so chunks continue where the last
    one stopped.
    """
    found: list[np.ndarray] = []
    have = 0
    candidate = first_candidate
    while have < needed:
        batch = int((needed - have) * 1.15) + 64
        j = np.arange(candidate, candidate + batch, dtype=np.int64)
        bases = (j * _BASE_MULTIPLIER + offset) % _BASES
        digits = (bases[:, None] // 10 ** np.arange(7, -1, -1, dtype=np.int64)) % 10
        check = (digits @ _ELFPROEF_WEIGHTS) % 11
        ok = (check < 10) & (bases != 0)
        keep = np.nonzero(ok)[0][: needed - have]
        found.append(bases[keep] * 10 + check[keep])
        have += len(keep)
        # Resume right after the last candidate used, so the next chunk never repeats a base.
        candidate += int(keep[-1]) + 1 if have == needed else batch
    return np.concatenate(found), candidate


def _raw_bsn_text(bsn: np.ndarray, rng: np.random.Generator, profile: dict[str, Any]) -> pl.Series:
    """BSNs as partner systems hold them: some lost their leading zero, some dotted or spaced,
    a few with a typo in the check digit (which always breaks the elfproef)."""
    n = len(bsn)
    typo = rng.random(n) < profile["bsn_typo_share"]
    last = bsn % 10
    bsn = np.where(typo, bsn - last + (last + 1) % 10, bsn)
    style = rng.random(n)
    dotted = style < profile["bsn_dotted_share"]
    spaced = (~dotted) & (style < profile["bsn_dotted_share"] + profile["bsn_spaced_share"])
    drop_zero = rng.random(n) < profile["bsn_leading_zero_dropped_share"]
    frame = pl.DataFrame(
        {
            "b": pl.Series(bsn).cast(pl.String).str.zfill(9),
            "dotted": dotted,
            "spaced": spaced,
            "drop": drop_zero,
        }
    )
    b = pl.col("b")
    text = (
        pl.when(pl.col("dotted"))
        .then(
            pl.concat_str(
                b.str.slice(0, 4), pl.lit("."), b.str.slice(4, 2), pl.lit("."), b.str.slice(6, 3)
            )
        )
        .when(pl.col("spaced"))
        .then(
            pl.concat_str(
                b.str.slice(0, 3), pl.lit(" "), b.str.slice(3, 3), pl.lit(" "), b.str.slice(6, 3)
            )
        )
        .when(pl.col("drop") & b.str.starts_with("0"))
        .then(b.str.slice(1, 8))
        .otherwise(b)
    )
    return frame.select(text.alias("bsn")).to_series()


class _PartnerFiles:
    """Open raw files, one per (partner, dataset); written under a temporary name and renamed
    when complete, so an interrupted run leaves no plausible-looking partial extract."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.handles: dict[tuple[str, str], IO[bytes]] = {}
        self.rows: dict[tuple[str, str], int] = {}

    def _final(self, partner: str, dataset: str) -> Path:
        return self.out_dir / partner / f"{dataset}.csv"

    def open(self, partner: str, dataset: str, schema: dict[str, pl.DataType]) -> None:
        final = self._final(partner, dataset)
        final.parent.mkdir(parents=True, exist_ok=True)
        handle = final.with_name(f".{final.name}.tmp").open("wb")
        pl.DataFrame(schema=schema).write_csv(handle, separator=SEPARATOR)
        self.handles[(partner, dataset)] = handle
        self.rows[(partner, dataset)] = 0

    def append(self, partner: str, dataset: str, frame: pl.DataFrame) -> None:
        frame.write_csv(
            self.handles[(partner, dataset)],
            separator=SEPARATOR,
            include_header=False,
            date_format="%Y-%m-%d",
            null_value="",
            quote_style="necessary",
        )
        self.rows[(partner, dataset)] += frame.height

    def close(self) -> dict[tuple[str, str], tuple[Path, int]]:
        written = {}
        for (partner, dataset), handle in self.handles.items():
            handle.close()
            final = self._final(partner, dataset)
            final.with_name(f".{final.name}.tmp").replace(final)
            written[(partner, dataset)] = (final, self.rows[(partner, dataset)])
        return written


_CLAIM_SCHEMA = {
    "bsn": pl.String,
    "claim_ref": pl.String,
    "claim_type": pl.String,
    "imposed_cents": pl.Int64,
    "outstanding_cents": pl.Int64,
    "arrears_cents": pl.Int64,
    "arrears_since": pl.Date,
    "stage": pl.String,
    "debt_assistance": pl.Boolean,
    "gemeente_code": pl.String,
}
_INCOME_SCHEMA = {
    "bsn": pl.String,
    "household_type": pl.String,
    "net_income_cents": pl.Int64,
    "income_month": pl.Date,
}


def synth(
    out_dir: Path,
    *,
    extract_date: dt.date,
    persons: int,
    seed: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> SynthResult:
    """Write raw extracts `<out_dir>/<PARTNER>/claims.csv` (every partner) and `TSL/income.csv`.

    Args:
        out_dir: the partner-side folder for raw extracts (never the hub's landing zone).
        extract_date: the date the extracts describe; no date in them lies after it.
        persons: how many persons with open claims to generate.
        seed: makes the output reproducible byte for byte.
        on_progress: called with the number of persons finished after each chunk.
    """
    if persons < 1:
        raise ValueError("persons must be at least 1")
    profile = load_profile()
    out_dir = Path(out_dir)
    partners = partner_codes()
    types_of = claim_types()
    gem_codes = np.array([code for code, _, _ in gemeenten()])
    gem_p = _normalised([pop for _, _, pop in gemeenten()])
    bsn_offset = int(np.random.default_rng([seed, 2**31]).integers(0, _BASES))

    files = _PartnerFiles(out_dir)
    for partner in partners:
        files.open(partner, "claims", _CLAIM_SCHEMA)
    files.open("TSL", "income", _INCOME_SCHEMA)

    next_candidate = 0
    claim_counter = dict.fromkeys(partners, 0)
    done = 0
    for chunk_index, start in enumerate(range(0, persons, CHUNK_PERSONS)):
        n = min(CHUNK_PERSONS, persons - start)
        rng = np.random.default_rng([seed, chunk_index])
        bsn, next_candidate = valid_bsns(next_candidate, n, bsn_offset)
        chunk = _Chunk(rng, profile, n, partners, gem_codes, gem_p, bsn)
        for partner in partners:
            frame = chunk.claims(partner, types_of[partner], claim_counter[partner], extract_date)
            claim_counter[partner] += frame.height
            files.append(partner, "claims", frame)
        files.append("TSL", "income", chunk.income(extract_date))
        done += n
        if on_progress:
            on_progress(done)

    written = files.close()
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "persons": persons,
        "extract_date": extract_date.isoformat(),
    }
    (out_dir / "synth.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    log.info("synth: %s persons, %s files in %s", persons, len(written), out_dir)
    return SynthResult(out_dir=out_dir, persons=persons, files=written)


class _Chunk:
    """One chunk of persons and everything drawn about them."""

    def __init__(
        self,
        rng: np.random.Generator,
        profile: dict[str, Any],
        n: int,
        partners: tuple[str, ...],
        gem_codes: np.ndarray,
        gem_p: np.ndarray,
        bsn: np.ndarray,
    ) -> None:
        self.rng, self.profile, self.n = rng, profile, n
        self.partners, self.gem_codes, self.gem_p, self.bsn = partners, gem_codes, gem_p, bsn
        per_person = profile["partners_per_person"]
        counts = rng.choice(
            np.array(list(per_person), dtype=np.int64),
            size=n,
            p=_normalised(list(per_person.values())),
        )
        weights = np.array([profile["partners"][p]["weight"] for p in partners])
        # Weighted draw of `count` partners without replacement (Gumbel top-k).
        keys = np.log(weights)[None, :] + rng.gumbel(size=(n, len(partners)))
        self.rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
        self.member = self.rank < counts[:, None]
        self.gemeente = rng.choice(len(gem_codes), size=n, p=gem_p)
        self.in_debt_assistance = rng.random(n) < profile["debt_assistance_share"]

    def claims(
        self, partner: str, types: tuple[str, ...], first_ref: int, extract_date: dt.date
    ) -> pl.DataFrame:
        rng, profile = self.rng, self.profile
        partner_index = self.partners.index(partner)
        people = np.nonzero(self.member[:, partner_index])[0]
        extra = np.minimum(
            rng.poisson(profile["partners"][partner]["extra_claims"], len(people)), 7
        )
        per_person_claims = 1 + extra
        known_da = self.in_debt_assistance[people] & (
            rng.random(len(people)) < profile["debt_assistance_known_by_partner"]
        )
        person = np.repeat(people, per_person_claims)
        m = len(person)

        params = [
            {
                **profile["claim_types"][t],
                **profile.get("claim_type_overrides", {}).get(partner, {}).get(t, {}),
            }
            for t in types
        ]
        type_idx = rng.choice(len(types), size=m, p=_normalised([p["weight"] for p in params]))
        median = np.array([p["median_cents"] for p in params], dtype=float)[type_idx]
        sigma = np.array([p["sigma"] for p in params], dtype=float)[type_idx]
        wahv = np.array([bool(p.get("wahv_surcharges")) for p in params])[type_idx]

        stage_names = list(profile["stages"])
        stage_idx = rng.choice(
            len(stage_names), size=m, p=_normalised(list(profile["stages"].values()))
        )
        stage = np.array(stage_names)[stage_idx]

        base = np.rint(median * np.exp(sigma * rng.standard_normal(m)))
        # Wahv: +50% after the first reminder, 3x the fine after the second (domain.md).
        multiplier = np.where(
            stage == "reminder",
            1.5,
            np.where(
                np.isin(stage, ["payment_plan", "deferred"]),
                np.where(rng.random(m) < 0.5, 1.5, 3.0),
                3.0,
            ),
        )
        imposed = np.clip(np.rint(base * np.where(wahv, multiplier, 1.0)), 100, 100_000_000)
        imposed = imposed.astype(np.int64)
        paid_fraction = np.where(
            rng.random(m) < profile["partly_paid_share"],
            rng.uniform(0, profile["paid_fraction_max"], m),
            0.0,
        )
        outstanding = np.maximum(1, imposed - np.floor(imposed * paid_fraction).astype(np.int64))

        free_share = np.zeros(m)
        for name, share in profile["arrears_free_share"].items():
            free_share[stage == name] = share
        in_arrears = rng.random(m) >= free_share
        # The first claim at a person's main agency is always in arrears, at a stage with arrears.
        first_claim = np.zeros(m, dtype=bool)
        first_claim[np.cumsum(per_person_claims) - per_person_claims] = True
        primary = first_claim & np.repeat(self.rank[people, partner_index] == 0, per_person_claims)
        stage = np.where(primary & (free_share > 0), "reminder", stage)
        in_arrears |= primary
        full = np.isin(stage, _STAGES_WITH_FULL_ARREARS)
        partial = np.maximum(1, np.rint(outstanding * rng.uniform(0.4, 1.0, m)).astype(np.int64))
        arrears = np.where(in_arrears, np.where(full, outstanding, partial), 0)

        recent = rng.random(m) < profile["recent_arrears_share"]
        age = np.where(
            recent,
            rng.integers(0, profile["recent_arrears_max_days"] + 1, m),
            profile["recent_arrears_max_days"]
            + rng.exponential(profile["arrears_age_mean_days"], m).astype(np.int64),
        )
        since = np.maximum(
            np.datetime64(extract_date, "D") - age.astype("timedelta64[D]"), _EARLIEST
        )

        gemeente = self.gemeente[person]
        moved = rng.random(m) < profile["moved_claim_share"]
        gemeente = np.where(moved, rng.choice(len(self.gem_codes), size=m, p=self.gem_p), gemeente)

        refs = np.arange(first_ref + 1, first_ref + m + 1)
        frame = pl.DataFrame(
            {
                "bsn": _raw_bsn_text(self.bsn[person], rng, profile),
                "claim_ref": pl.Series(refs).cast(pl.String).str.zfill(9),
                "claim_type": np.array(types)[type_idx],
                "imposed_cents": imposed,
                "outstanding_cents": outstanding,
                "arrears_cents": arrears,
                "arrears_since": since,
                "stage": stage,
                "debt_assistance": np.repeat(known_da, per_person_claims),
                "gemeente_code": self.gem_codes[gemeente],
            }
        )
        year = extract_date.year
        return frame.with_columns(
            pl.concat_str(pl.lit(f"{partner}-{year}-"), pl.col("claim_ref")).alias("claim_ref"),
            pl.when(pl.col("arrears_cents") > 0)
            .then(pl.col("arrears_since"))
            .otherwise(None)
            .cast(pl.Date)
            .alias("arrears_since"),
        ).select(CLAIM_COLUMNS)

    def income(self, extract_date: dt.date) -> pl.DataFrame:
        rng, profile = self.rng, self.profile
        tsl = np.nonzero(self.member[:, self.partners.index("TSL")])[0]
        people = tsl[rng.random(len(tsl)) < profile["income_share_of_tsl"]]
        k = len(people)
        names = list(profile["household_types"])
        household_idx = rng.choice(
            len(names), size=k, p=_normalised(list(profile["household_types"].values()))
        )
        household = np.array(names)[household_idx]
        median = np.array([profile["net_income_median_cents"][h] for h in names], dtype=float)[
            household_idx
        ]
        net = np.rint(median * np.exp(profile["net_income_sigma"] * rng.standard_normal(k)))
        net = np.where(rng.random(k) < profile["zero_income_share"], 0, net)
        net = np.clip(net, 0, 10_000_000).astype(np.int64)
        first_of_month = extract_date.replace(day=1)
        income_month = (first_of_month - dt.timedelta(days=1)).replace(day=1)
        return pl.DataFrame(
            {
                "bsn": _raw_bsn_text(self.bsn[people], rng, profile),
                "household_type": household,
                "net_income_cents": net,
                "income_month": pl.Series([income_month] * k, dtype=pl.Date),
            }
        ).select(INCOME_COLUMNS)
