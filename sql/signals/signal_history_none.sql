-- grain: none (no signal delivered inside the cool-down window): an empty signal_history
select
    cast(null as date) as run_date,
    cast(null as varchar) as person_id,
    cast(null as varchar[]) as qualifying_partners,
    cast(null as bigint) as arrears_cents
where false
