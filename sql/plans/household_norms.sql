-- grain: one row per household type of the policy file (plans.household_norm)
select * from household_rows
