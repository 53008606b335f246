-- grain: none; no feedback taken in yet: the standing statuses with no rows
select
    cast(null as varchar) as gemeente_code,
    cast(null as varchar) as signal_id,
    cast(null as date) as signal_date,
    cast(null as varchar) as person_id,
    cast(null as varchar[]) as qualifying_partners,
    cast(null as date) as status_date,
    cast(null as varchar) as status,
    cast(null as varchar) as result
where false
