-- grain: one row per run date and gemeente, from the latest delivery of that date (a delivery
-- made under an older contract lacks the later columns: union_by_name, completed by the caller)
select * exclude (filename)
from read_parquet($ledger_files, filename = true, union_by_name = true)
qualify max(filename) over (partition by run_date) = filename
