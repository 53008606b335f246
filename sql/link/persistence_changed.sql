-- grain: one row: how many persons of the date got a different persistence count
select count(*) as changed
from persons
inner join persistence_refreshed as refreshed on persons.person_id = refreshed.person_id
where persons.persistence_runs <> refreshed.persistence_runs
