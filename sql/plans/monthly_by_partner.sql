-- grain: one row per partner with plan lines in the run, in code order
select
    plan_lines.partner,
    cast(sum(plan_lines.monthly_cents) as bigint) as monthly_cents
from plan_lines
group by plan_lines.partner
order by plan_lines.partner
