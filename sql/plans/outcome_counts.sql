-- grain: one row per plan outcome that occurs in the run
select
    plan_proposals.outcome,
    count(*) as proposals
from plan_proposals
group by plan_proposals.outcome
