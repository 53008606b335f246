-- grain: one row per person of the previous run date (its persistence count only), from the
-- published snapshot (that date's linked copy was evicted: pipelines/evict.py)
select
    persons.person_id,
    persons.persistence_runs
from published.main.persons as persons
where persons.run_date = $run_date
