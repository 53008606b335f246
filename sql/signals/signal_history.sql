-- grain: one row per signal delivered on a ledger date inside the cool-down window
select
    history.run_date,
    history.person_id,
    history.qualifying_partners,
    history.arrears_cents
from read_parquet($history_files) as history
