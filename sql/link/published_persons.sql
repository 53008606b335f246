-- grain: one row per person of one run date, as the published snapshot holds it (a date whose
-- linked copy was evicted: pipelines/evict.py)
select persons.*
from published.main.persons as persons
where persons.run_date = $run_date
