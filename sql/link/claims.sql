-- grain: one row per accepted claim of the run, keyed by the hub person id (no linkage pseudonym)
select
    cast($run_date as date) as run_date,
    ids.person_id,
    staged.partner,
    staged.claim_ref,
    staged.claim_type,
    staged.imposed_cents,
    staged.outstanding_cents,
    staged.arrears_cents,
    staged.arrears_since,
    staged.stage,
    staged.debt_assistance,
    staged.gemeente_code
from staged_claims as staged
inner join person_ids as ids on staged.person_pseudonym = ids.person_pseudonym
