-- grain: one row per plan line (claim) of the run, with its plan's outcome and term
select
    plan_line.partner,
    plan_line.claim_ref,
    proposal.outcome as plan_outcome,
    plan_line.monthly_cents,
    proposal.term_months
from read_parquet($lines_file) as plan_line
inner join read_parquet($proposals_file) as proposal on plan_line.person_id = proposal.person_id
