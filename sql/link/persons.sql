-- grain: one row per person with an accepted claim in the run (rules.md sections 1-2)
with per_partner as (
    select
        claims.person_id,
        claims.partner,
        sum(claims.arrears_cents) as arrears_cents
    from claims
    group by claims.person_id, claims.partner
),

partners_in_arrears as (
    select
        per_partner.person_id,
        list(per_partner.partner order by per_partner.partner) as partners
    from per_partner
    where per_partner.arrears_cents > 0
    group by per_partner.person_id
),

gemeente_counts as (
    select
        claims.person_id,
        claims.gemeente_code,
        count(*) as claims_there
    from claims
    group by claims.person_id, claims.gemeente_code
),

routed as (
    -- the gemeente on most of the person's claims; ties go to the smallest code
    select
        gemeente_counts.person_id,
        arg_min(
            gemeente_counts.gemeente_code,
            (-gemeente_counts.claims_there, gemeente_counts.gemeente_code)
        ) as gemeente_code
    from gemeente_counts
    group by gemeente_counts.person_id
),

totals as (
    select
        claims.person_id,
        cast(sum(claims.outstanding_cents) as bigint) as outstanding_cents,
        cast(sum(claims.arrears_cents) as bigint) as arrears_cents,
        min(claims.arrears_since) filter (
            where claims.arrears_cents > 0
        ) as oldest_arrears_since,
        bool_or(claims.debt_assistance) as debt_assistance
    from claims
    group by claims.person_id
)

select
    totals.person_id,
    totals.outstanding_cents,
    totals.arrears_cents,
    totals.oldest_arrears_since,
    routed.gemeente_code,
    totals.debt_assistance,
    cast($run_date as date) as run_date,
    cast(coalesce(len(arrears.partners), 0) as integer) as n_partners,
    cast(
        case
            when coalesce(len(arrears.partners), 0) >= 2
                then coalesce(previous.persistence_runs, 0) + 1
            else 0
        end as integer
    ) as persistence_runs,
    coalesce(arrears.partners, cast([] as varchar[])) as partners
from totals
inner join routed on totals.person_id = routed.person_id
left join partners_in_arrears as arrears on totals.person_id = arrears.person_id
left join previous_persons as previous on totals.person_id = previous.person_id
