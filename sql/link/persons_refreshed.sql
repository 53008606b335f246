-- grain: one row per person of a committed run date: persons.parquet with refreshed persistence
select persons.* replace (refreshed.persistence_runs as persistence_runs)
from persons
inner join persistence_refreshed as refreshed on persons.person_id = refreshed.person_id
