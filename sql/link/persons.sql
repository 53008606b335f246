-- grain: one row per person with an accepted claim in the run (rules.md sections 1-2)
-- A partner is in arrears for a person when the person's arrears there add up to more than
-- zero; arrears are never negative (claims contract), so: when one claim there has arrears.
-- Each partner of the night is one bit (of 64; there are 8 CRI partners); a person's partners
-- in arrears are the bits of their claims with arrears, OR-ed in the one pass over the claims
-- that makes the totals (a list per person built in its own group-by cost more than the rest
-- of this query together).
with partner_bits as (
    select
        partners.partner,
        cast(1 as ubigint)
        << cast(row_number() over (order by partners.partner) - 1 as ubigint) as partner_bit
    from (select distinct claims.partner from claims) as partners
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
        bool_or(claims.debt_assistance) as debt_assistance,
        bit_or(partner_bits.partner_bit) filter (
            where claims.arrears_cents > 0
        ) as arrears_mask
    from claims
    inner join partner_bits on claims.partner = partner_bits.partner
    group by claims.person_id
),

partner_sets as (
    -- the partners of each set of bits that occurs, alphabetically
    select
        masks.arrears_mask,
        list(partner_bits.partner order by partner_bits.partner) as partners
    from (select distinct totals.arrears_mask from totals) as masks
    inner join partner_bits on masks.arrears_mask & partner_bits.partner_bit <> 0
    group by masks.arrears_mask
)

-- the contract's column order: the table is handed to plans and signals as written
select  -- noqa: ST06
    cast($run_date as date) as run_date,
    totals.person_id,
    cast(coalesce(len(arrears.partners), 0) as integer) as n_partners,
    coalesce(arrears.partners, cast([] as varchar[])) as partners,
    totals.outstanding_cents,
    totals.arrears_cents,
    totals.oldest_arrears_since,
    routed.gemeente_code,
    totals.debt_assistance,
    cast(
        case
            when coalesce(len(arrears.partners), 0) >= 2
                then coalesce(previous.persistence_runs, 0) + 1
            else 0
        end as integer
    ) as persistence_runs
from totals
inner join routed on totals.person_id = routed.person_id
left join partner_sets as arrears on totals.arrears_mask = arrears.arrears_mask
left join previous_persons as previous on totals.person_id = previous.person_id
