-- grain: one row per person with arrears at two or more partners in the run (rules.md section 3)
-- Integer cents only: `//` is integer division; ceil(a / b) is written (a + b - 1) // b.
with candidates as (
    select
        persons.person_id,
        persons.debt_assistance
    from persons
    where persons.n_partners >= 2
),

totals as (
    select
        claims.person_id,
        cast(sum(claims.outstanding_cents) as bigint) as total_cents
    from claims
    inner join candidates on claims.person_id = candidates.person_id
    group by claims.person_id
),

norms_in_force as (
    -- the bijstandsnorm row with the latest valid_from on or before the run date
    select
        ref_norms.household_norm,
        ref_norms.monthly_cents
    from ref_norms
    where ref_norms.valid_from <= cast($run_date as date)
    qualify row_number() over (
        partition by ref_norms.household_norm order by ref_norms.valid_from desc
    ) = 1
),

capacities as (
    select
        income.person_id,
        greatest(
            0,
            income.net_income_cents
            - (norms_in_force.monthly_cents * $protected_income_percent) // 100
        ) as capacity_cents
    from income
    inner join household_norms on income.household_type = household_norms.household_type
    inner join norms_in_force on household_norms.household_norm = norms_in_force.household_norm
),

standard as (
    select
        totals.person_id,
        totals.total_cents,
        coalesce(
            (
                select min(policy_terms.term_months)
                from policy_terms
                where totals.total_cents <= policy_terms.max_total_cents
            ),
            $term_otherwise_months
        ) as standard_term_months
    from totals
),

decided as (
    select
        candidates.person_id,
        standard.total_cents,
        capacities.capacity_cents,
        (standard.total_cents + standard.standard_term_months - 1)
        // standard.standard_term_months as standard_monthly_cents,
        case
            when candidates.debt_assistance then 'excluded'
            when
                capacities.capacity_cents is null
                or capacities.capacity_cents
                >= (standard.total_cents + standard.standard_term_months - 1)
                // standard.standard_term_months
                then 'standard'
            when
                capacities.capacity_cents > 0
                and (standard.total_cents + capacities.capacity_cents - 1)
                // capacities.capacity_cents <= $max_term_months
                then 'personal'
            else 'refer'
        end as outcome
    from candidates
    inner join standard on candidates.person_id = standard.person_id
    left join capacities on candidates.person_id = capacities.person_id
),

with_monthly as (
    select
        decided.*,
        case decided.outcome
            when 'standard' then decided.standard_monthly_cents
            when 'personal' then decided.capacity_cents
        end as monthly_cents
    from decided
)

select
    with_monthly.person_id,
    with_monthly.outcome,
    with_monthly.total_cents,
    with_monthly.capacity_cents,
    with_monthly.standard_monthly_cents,
    with_monthly.monthly_cents,
    cast($run_date as date) as run_date,
    cast(
        (with_monthly.total_cents + with_monthly.monthly_cents - 1)
        // with_monthly.monthly_cents as integer
    ) as term_months,
    cast($rules_version as varchar) as rules_version
from with_monthly
