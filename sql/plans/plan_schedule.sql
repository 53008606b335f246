-- grain: one row per month of each standard or personal plan (rules.md section 3.6)
with months as (
    select
        proposals.person_id,
        proposals.total_cents,
        proposals.monthly_cents,
        proposals.term_months,
        unnest(range(1, proposals.term_months + 1)) as month_number
    from plan_proposals as proposals
    where proposals.monthly_cents is not null
)

select
    months.person_id,
    cast($run_date as date) as run_date,
    cast(months.month_number as integer) as month_number,
    case
        when months.month_number < months.term_months then months.monthly_cents
        else months.total_cents - months.monthly_cents * (months.term_months - 1)
    end as amount_cents
from months
