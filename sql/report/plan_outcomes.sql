-- grain: one row per plan outcome in the run, most proposals first
select
    plan_proposals.outcome,
    count(*) as proposals
from plan_proposals
where plan_proposals.run_date = $run_date
group by plan_proposals.outcome
order by proposals desc, plan_proposals.outcome asc
