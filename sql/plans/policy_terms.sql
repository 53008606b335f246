-- grain: one row per row of the policy file's standard-term table (plans.term_table)
select
    cast(policy_terms_rows.max_total_cents as bigint) as max_total_cents,
    cast(policy_terms_rows.term_months as integer) as term_months
from policy_terms_rows
