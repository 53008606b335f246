-- grain: none (no earlier run date): an empty previous_persons
select
    cast(null as varchar) as person_id,
    cast(0 as integer) as persistence_runs
where false
