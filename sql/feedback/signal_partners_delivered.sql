-- grain: one row per run date and partner: the signals in which the partner qualified, from
-- the ledger (each date's latest delivery before tonight) and tonight's tables (not in the
-- ledger yet)
with delivered as (
    select * exclude (filename)
    from read_parquet($ledger_files, filename = true)
    qualify max(filename) over (partition by run_date) = filename
)

select delivered.*
from delivered
where delivered.run_date < cast($run_date as date)
union all
select tonight.*
from read_parquet($tonight_file) as tonight
