-- grain: one row per household norm the policy maps a household type to that has no
-- bijstandsnorm in force on $run_date (no row with valid_from on or before it), with the first
-- date the reference has for it (null: none at all)
select
    policy_norms.household_norm,
    min(ref_norms.valid_from) as first_valid_from
from (select distinct household_norms.household_norm from household_norms) as policy_norms
left join ref_norms on policy_norms.household_norm = ref_norms.household_norm
group by policy_norms.household_norm
having count(*) filter (where ref_norms.valid_from <= cast($run_date as date)) = 0
order by policy_norms.household_norm
