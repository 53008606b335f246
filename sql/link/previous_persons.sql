-- grain: one row per person of the previous run date (its persistence count only)
select
    previous.person_id,
    previous.persistence_runs
from read_parquet($previous_file) as previous
