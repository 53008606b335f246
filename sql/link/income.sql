-- grain: at most one row per person of the run (Toeslagen income), keyed by the hub person id
select
    staged.household_type,
    staged.net_income_cents,
    staged.income_month,
    cast($run_date as date) as run_date,
    ids.person_id
from staged_income as staged
inner join person_ids as ids on staged.person_pseudonym = ids.person_pseudonym
