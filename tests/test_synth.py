"""Synthetic extracts: deterministic, valid, shaped like the domain brief within tolerances."""

import datetime as dt
import hashlib

import duckdb
import numpy as np
import pytest

from pipelines import synth as synth_module
from pipelines.reference import claim_types, gemeenten, partner_codes
from pipelines.synth import synth, valid_bsns
from privacy.bsn import bsn_rejection_reason, passes_elfproef

DATE = dt.date(2026, 11, 22)
PERSONS = 100_000


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    result = synth(out, extract_date=DATE, persons=PERSONS, seed=3)
    con = duckdb.connect()
    con.execute(
        f"""create table claims as
        select regexp_replace(bsn, '[ .]', '', 'g') as bsn_digits,
               split_part(parse_dirpath(filename), '/', -1) as partner, * exclude (filename)
        from read_csv('{out}/*/claims.csv', delim=';', header=true, filename=true,
                      types={{'bsn': 'VARCHAR', 'claim_ref': 'VARCHAR'}})"""
    )
    con.execute(f"""create table income as select * from read_csv('{out}/TSL/income.csv',
                    delim=';', header=true, types={{'bsn': 'VARCHAR'}})""")
    return result, con


def share(con, sql):
    return con.execute(sql).fetchone()[0]


def test_every_partner_and_income_is_written(population):
    result, _ = population
    assert set(result.files) == {(p, "claims") for p in partner_codes()} | {("TSL", "income")}
    assert all(rows > 0 for _, rows in result.files.values())


def test_partner_sizes_follow_the_brief(population):
    _, con = population
    sizes = dict(
        con.execute(
            f"select partner, count(distinct bsn_digits) / {PERSONS} from claims group by 1"
        ).fetchall()
    )
    # domain.md: BD > 1M and TSL ~0.9M of ~2M persons; DUO ~150k; RVO smallest.
    assert 0.45 <= sizes["BD"] <= 0.55
    assert 0.39 <= sizes["TSL"] <= 0.49
    assert 0.05 <= sizes["DUO"] <= 0.09
    assert sorted(sizes, key=sizes.get)[0] == "RVO"
    assert sizes["BD"] > sizes["TSL"] > max(v for k, v in sizes.items() if k not in ("BD", "TSL"))


def test_about_a_quarter_in_arrears_at_two_or_more_partners(population):
    _, con = population
    multi = share(
        con,
        f"""
        with per_partner as (select bsn_digits, partner, sum(arrears_cents) as arrears
                             from claims group by all)
        select count(*) / {PERSONS} from (
            select bsn_digits from per_partner where arrears > 0
            group by bsn_digits having count(*) >= 2)""",
    )
    assert 0.22 <= multi <= 0.30


def test_gemeenten_are_weighted_by_population(population):
    _, con = population
    per_gemeente = dict(
        con.execute(
            "select gemeente_code, count(distinct bsn_digits) from claims group by 1"
        ).fetchall()
    )
    total_population = sum(pop for _, _, pop in gemeenten())
    for code in ("GM0363", "GM0599", "GM0518"):  # Amsterdam, Rotterdam, 's-Gravenhage
        expected = PERSONS * dict((c, p) for c, _, p in gemeenten())[code] / total_population
        assert abs(per_gemeente[code] - expected) / expected < 0.15
    assert set(per_gemeente) <= {code for code, _, _ in gemeenten()}
    assert len(per_gemeente) > 300  # the spread reaches nearly every gemeente


def test_rows_obey_the_claims_rules(population):
    _, con = population
    allowed = [(p, t) for p, types in claim_types().items() for t in types]
    con.execute("create or replace temp table allowed(partner varchar, claim_type varchar)")
    con.executemany("insert into allowed values (?, ?)", allowed)
    broken = share(
        con,
        """
        select count(*) from claims c
        where not (c.outstanding_cents between 1 and 100000000)
           or c.imposed_cents < c.outstanding_cents
           or c.arrears_cents not between 0 and c.outstanding_cents
           or (c.arrears_cents > 0) <> (c.arrears_since is not null)
           or c.arrears_since < date '1990-01-01' or c.arrears_since > date '2026-11-22'
           or c.stage not in ('reminder', 'final_notice', 'bailiff', 'garnishment',
                              'payment_plan', 'deferred')
           or (c.partner, c.claim_type) not in (select (partner, claim_type) from allowed)""",
    )
    assert broken == 0
    duplicates = share(con, "select count(*) - count(distinct (partner, claim_ref)) from claims")
    assert duplicates == 0


def test_amounts_and_flags_are_plausible(population):
    _, con = population
    debt_assistance = share(con, "select avg(debt_assistance::int) from claims")
    assert 0.01 <= debt_assistance <= 0.05
    wahv_tripled = share(
        con,
        """select count(*) from claims where claim_type = 'WAHV'
                                 and stage = 'final_notice' and imposed_cents % 3 = 0""",
    )
    assert wahv_tripled > 0
    median_bd, median_cak = con.execute("""
        select median(outstanding_cents) filter (where partner = 'BD'),
               median(outstanding_cents) filter (where claim_type = 'EIGEN_BIJDRAGE_WMO')
        from claims""").fetchone()
    assert median_bd > 5 * median_cak  # large tax debts, small CAK contributions
    income_rows, tsl_people = con.execute("""
        select (select count(*) from income),
               (select count(distinct bsn_digits) from claims where partner = 'TSL')""").fetchone()
    assert 0.5 <= income_rows / tsl_people <= 0.7
    assert share(con, "select count(*) from income where day(income_month) <> 1") == 0


def test_bsns_are_valid_with_a_few_realistic_faults(population):
    _, con = population
    texts = [row[0] for row in con.execute("select bsn from claims").fetchall()]
    invalid = sum(bsn_rejection_reason(t) is not None for t in texts)
    assert 0 < invalid < len(texts) * 0.002
    assert any("." in t for t in texts) and any(" " in t for t in texts)
    assert any(len(t) == 8 for t in texts)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def digest(folder, seed):
        result = synth(folder, extract_date=DATE, persons=3_000, seed=seed)
        return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, (p, _) in result.files.items()}

    assert digest(tmp_path / "a", 9) == digest(tmp_path / "b", 9)
    assert digest(tmp_path / "a", 9) != digest(tmp_path / "c", 10)


def test_bsns_stay_unique_and_continuous_across_chunks():
    whole, _ = valid_bsns(0, 30_000, offset=12345)
    parts, candidate = [], 0
    for size in (10_000, 10_000, 10_000):
        part, candidate = valid_bsns(candidate, size, offset=12345)
        parts.append(part)
    chunked = np.concatenate(parts)
    assert np.array_equal(whole, chunked)
    assert len(np.unique(whole)) == len(whole)
    assert all(passes_elfproef(f"{b:09d}") for b in whole[:5000])


def test_small_chunks_give_unique_persons(tmp_path, monkeypatch):
    monkeypatch.setattr(synth_module, "CHUNK_PERSONS", 1_000)
    synth(tmp_path, extract_date=DATE, persons=3_500, seed=1)
    con = duckdb.connect()
    per_person = con.execute(f"""
        select count(distinct lpad(regexp_replace(bsn, '[ .]', '', 'g'), 9, '0'))
        from read_csv('{tmp_path}/*/claims.csv', delim=';', header=true,
                      types={{'bsn': 'VARCHAR'}})""").fetchone()[0]
    # Each person is one BSN; a rare typo'd row can add a distinct (invalid) value.
    assert 3_500 <= per_person <= 3_510
