-- grain: one row per signal_id ever delivered (a rerun's redelivery counts once: the latest)
select * exclude (filename)
from read_parquet($ledger_files, filename = true)
qualify row_number() over (partition by signal_id order by filename desc) = 1
