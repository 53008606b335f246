"""Joint payment-plan proposals: every branch of rules.md section 3 by hand, to the cent, and
property tests of the invariants against an independent Python transcription."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.plans import build_plan_tables
from pipelines.policy import load_policy
from tests.plan_reference import proposal

RUN = dt.date(2026, 11, 22)
# bijstandsnorm single from 2025-07-01: 136,906 -> protected 95%: floor(130,060.7) = 130,060
SINGLE_BVV = 130_060


def plan(claims, *, net_income=None, household="single", debt_assistance=False, run_date=RUN):
    """Run the real plan SQL for one person. claims: [(partner, claim_ref, outstanding)]."""
    with duckdb.connect() as con:
        con.execute(
            "create table persons as select 'p' as person_id, 2 as n_partners, "
            "$da as debt_assistance",
            {"da": debt_assistance},
        )
        con.execute(
            "create table claims (person_id varchar, partner varchar, claim_ref varchar,"
            " outstanding_cents bigint)"
        )
        con.executemany("insert into claims values ('p', ?, ?, ?)", claims)
        con.execute(
            "create table income (person_id varchar, household_type varchar, "
            "net_income_cents bigint)"
        )
        if net_income is not None:
            con.execute("insert into income values ('p', ?, ?)", [household, net_income])
        build_plan_tables(con, run_date, load_policy())
        row = con.execute(
            "select outcome, total_cents, capacity_cents, standard_monthly_cents, "
            "monthly_cents, term_months, rules_version "
            "from plan_proposals"
        ).fetchone()
        lines = dict(
            ((p, r), m)
            for p, r, m in con.execute(
                "select partner, claim_ref, monthly_cents from plan_lines"
            ).fetchall()
        )
        schedule = [
            a
            for (a,) in con.execute(
                "select amount_cents from plan_schedule order by month_number"
            ).fetchall()
        ]
    keys = ("outcome", "total", "capacity", "standard_monthly", "monthly", "term", "version")
    return {**dict(zip(keys, row, strict=True)), "lines": lines, "schedule": schedule}


def two(total_a, total_b=0):
    claims = [("BD", "a", total_a)]
    return [*claims, ("TSL", "b", total_b)] if total_b else claims


@pytest.mark.parametrize(
    ("total", "term"),
    [
        (12_000, 3),
        (12_001, 6),
        (30_000, 6),
        (30_001, 9),
        (45_000, 9),
        (45_001, 12),
        (125_000, 12),
        (125_001, 18),
        (200_000, 18),
        (200_001, 24),
        (300_000, 24),
        (300_001, 30),
        (400_000, 30),
        (400_001, 36),
        (9_000_000, 36),
    ],
)
def test_term_table_bounds_are_inclusive(total, term):
    result = plan(two(total - 1, 1))
    assert result["outcome"] == "standard"
    assert result["standard_monthly"] == -(-total // term)
    assert result["term"] == -(-total // result["monthly"]) and result["term"] <= term


def test_standard_without_income_by_hand():
    result = plan(two(7_001, 5_000))  # total 12,001 -> term 6 -> ceil(12,001 / 6) = 2,001
    assert (result["outcome"], result["capacity"], result["monthly"], result["term"]) == (
        "standard",
        None,
        2_001,
        6,
    )
    assert result["schedule"] == [2_001] * 5 + [1_996]  # 12,001 - 5 * 2,001
    assert result["version"] == "2"  # rules-2.yaml: section 3 is unchanged from version 1


def test_capacity_exactly_at_the_standard_amount_is_standard():
    result = plan(two(20_000, 10_000), net_income=SINGLE_BVV + 5_000)  # total 30,000: 5,000
    assert (result["capacity"], result["outcome"], result["monthly"]) == (5_000, "standard", 5_000)


def test_one_cent_below_the_standard_amount_is_personal():
    result = plan(two(20_000, 10_000), net_income=SINGLE_BVV + 4_999)
    assert (result["outcome"], result["monthly"], result["term"]) == ("personal", 4_999, 7)
    assert result["schedule"] == [4_999] * 6 + [6]  # 30,000 - 6 * 4,999


def test_capacity_zero_is_refer():
    result = plan(two(20_000, 10_000), net_income=100_000)  # below the protected income
    assert (result["capacity"], result["outcome"], result["monthly"], result["term"]) == (
        0,
        "refer",
        None,
        None,
    )
    assert result["lines"] == {} and result["schedule"] == []


def test_thirty_six_months_exactly_is_personal_thirty_seven_is_refer():
    # total 360,000: standard term 30 -> 12,000 a month
    at_36 = plan(two(200_000, 160_000), net_income=SINGLE_BVV + 10_000)
    assert (at_36["outcome"], at_36["monthly"], at_36["term"]) == ("personal", 10_000, 36)
    at_37 = plan(two(200_000, 160_000), net_income=SINGLE_BVV + 9_999)
    assert at_37["outcome"] == "refer"


def test_couple_norm_and_norm_in_force_on_the_run_date():
    # couple norm from 2025-07-01: 195,580 -> floor(185,801.0) = 185,801
    couple = plan(two(20_000, 10_000), net_income=185_801 + 4_000, household="couple_children")
    assert couple["capacity"] == 4_000
    # on 2025-06-30 the 2025-01-01 single norm applies: 134,545 -> floor(127,817.75) = 127,817
    early = plan(two(20_000, 10_000), net_income=127_817 + 3_000, run_date=dt.date(2025, 6, 30))
    assert early["capacity"] == 3_000


def test_debt_assistance_is_excluded():
    result = plan(two(20_000, 10_000), debt_assistance=True)
    assert (result["outcome"], result["monthly"], result["lines"]) == ("excluded", None, {})


def test_largest_remainder_goes_first():
    # personal 100 a month over 500 + 1,500 + 1,000 = 3,000: floors 16, 50, 33 (sum 99);
    # remainders 2,000, 0, 1,000: the leftover cent goes to the TSL claim.
    result = plan(
        [("TSL", "t", 500), ("BD", "b", 1_500), ("CJIB", "c", 1_000)], net_income=SINGLE_BVV + 100
    )
    assert result["monthly"] == 100
    assert result["lines"] == {("TSL", "t"): 17, ("BD", "b"): 50, ("CJIB", "c"): 33}


def test_ties_by_outstanding_then_partner_then_claim_ref():
    equal = plan(
        [("TSL", "t", 1_000), ("CJIB", "c", 1_000), ("BD", "b", 1_000)], net_income=SINGLE_BVV + 100
    )
    assert equal["lines"] == {("BD", "b"): 34, ("CJIB", "c"): 33, ("TSL", "t"): 33}
    same_partner = plan(
        [("BD", "z", 1_000), ("BD", "a", 1_000), ("TSL", "t", 1_000)], net_income=SINGLE_BVV + 100
    )
    assert same_partner["lines"] == {("BD", "a"): 34, ("BD", "z"): 33, ("TSL", "t"): 33}
    # Equal remainders, different outstanding: the larger claim gets the cent. Total 10 cents
    # -> standard 4 a month; floors 0, 2, 1 (sum 3); remainders 4, 4, 2; one cent left.
    larger = plan([("BD", "a", 1), ("TSL", "b", 6), ("CJIB", "c", 3)])
    assert larger["monthly"] == 4
    assert larger["lines"] == {("BD", "a"): 0, ("TSL", "b"): 3, ("CJIB", "c"): 1}


claims_strategy = st.lists(
    st.tuples(st.sampled_from(["BD", "TSL", "CJIB", "CAK"]), st.integers(1, 10**8)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(claims_strategy, st.one_of(st.none(), st.integers(0, 2_000_000)))
def test_invariants_and_agreement_with_the_reference(raw_claims, capacity):
    claims = [
        (partner, f"r{i}", outstanding) for i, (partner, outstanding) in enumerate(raw_claims)
    ]
    result = plan(claims, net_income=None if capacity is None else SINGLE_BVV + capacity)
    expected = proposal(claims, capacity)
    total = sum(c[2] for c in claims)
    assert result["outcome"] == expected["outcome"]
    assert result["monthly"] == expected["monthly"] and result["term"] == expected["term"]
    assert result["lines"] == expected["lines"]
    assert result["schedule"] == expected["schedule"]
    if result["monthly"] is not None:
        assert sum(result["lines"].values()) == result["monthly"]
        assert all(result["lines"][(p, r)] <= o for p, r, o in claims)
        assert sum(result["schedule"]) == total
        assert 1 <= result["term"] <= 36 and len(result["schedule"]) == result["term"]


def test_a_date_before_the_first_norm_has_unknown_capacity_and_says_so():
    """The reference's norms start on 2025-01-01: on 2024-12-31 no norm is in force, so an
    income row gives no capacity (rules.md section 3 has no norm to protect) and the plan is
    standard, as without income; `norm_gap` gives the line the run prints."""
    from pipelines.plans import norm_gap

    before = dt.date(2024, 12, 31)
    result = plan(two(300_000, 300_000), net_income=130_000, run_date=before)
    assert (result["outcome"], result["capacity"], result["monthly"]) == ("standard", None, 16_667)
    with duckdb.connect() as con:
        con.execute(
            "create table persons (person_id varchar, n_partners int, debt_assistance bool)"
        )
        con.execute(
            "create table claims (person_id varchar, partner varchar, claim_ref varchar,"
            " outstanding_cents bigint)"
        )
        con.execute(
            "create table income (person_id varchar, household_type varchar,"
            " net_income_cents bigint)"
        )
        build_plan_tables(con, before, load_policy())
        assert "for couple (its first: 2025-01-01), single (its first: 2025-01-01)" in (
            norm_gap(con, before)
        )
        assert norm_gap(con, dt.date(2025, 1, 1)) is None
        # a norm the reference lacks is named on any date; one the policy does not use is not
        con.execute("delete from ref_norms where household_norm = 'couple'")
        con.execute("insert into ref_norms values (date '2030-01-01', 'single_young', 1)")
        assert "for couple (none) in" in norm_gap(con, dt.date(2026, 1, 1))
