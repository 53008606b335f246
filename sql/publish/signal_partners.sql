-- grain: one row per run date and partner, from the latest delivery of that date
select * exclude (filename)
from read_parquet($ledger_files, filename = true)
qualify max(filename) over (partition by run_date) = filename
