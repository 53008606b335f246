-- grain: one row per claim of a person with a standard or personal plan (rules.md section 3.5)
-- Pro rata: floor(monthly * outstanding / total); the leftover cents go one each to the largest
-- remainders, ties by larger outstanding, then partner code, then claim_ref.
with shares as (
    select
        claims.person_id,
        claims.partner,
        claims.claim_ref,
        claims.outstanding_cents,
        proposals.monthly_cents as plan_monthly_cents,
        cast(proposals.monthly_cents as hugeint) * claims.outstanding_cents
        // proposals.total_cents as floor_cents,
        cast(proposals.monthly_cents as hugeint) * claims.outstanding_cents
        % proposals.total_cents as remainder_cents
    from claims
    inner join plan_proposals as proposals on claims.person_id = proposals.person_id
    where proposals.monthly_cents is not null
),

ranked as (
    select
        shares.*,
        row_number() over (
            partition by shares.person_id
            order by
                shares.remainder_cents desc,
                shares.outstanding_cents desc,
                shares.partner asc,
                shares.claim_ref asc
        ) as remainder_rank,
        shares.plan_monthly_cents
        - sum(shares.floor_cents) over (partition by shares.person_id) as leftover_cents
    from shares
)

select
    ranked.person_id,
    ranked.partner,
    ranked.claim_ref,
    ranked.outstanding_cents,
    cast($run_date as date) as run_date,
    cast(
        ranked.floor_cents
        + case when ranked.remainder_rank <= ranked.leftover_cents then 1 else 0 end
        as bigint
    ) as monthly_cents
from ranked
