-- grain: one row per person signalled to their gemeente in the run (rules.md section 4)
select
    decisions.run_date,
    decisions.person_id,
    decisions.gemeente_code,
    decisions.reasons,
    decisions.partners,
    decisions.qualifying_partners,
    decisions.arrears_cents,
    decisions.outstanding_cents,
    decisions.oldest_arrears_since as arrears_since,
    decisions.plan_outcome,
    decisions.plan_monthly_cents,
    decisions.crisis,
    cast($rules_version as varchar) as rules_version
from signal_decisions as decisions
where decisions.decision = 'signalled'
