-- grain: at most one row per person of the run: the income the plans stage reads
-- (an internal input, not a published table, so no contract names its columns)
select
    income.run_date,
    income.person_id,
    income.household_type,
    income.net_income_cents,
    income.income_month
from income
