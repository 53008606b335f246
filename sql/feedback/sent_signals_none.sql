-- grain: none; no ledger date named by the feedback's signal ids: no signal sent
select
    cast(null as varchar) as signal_id,
    cast(null as date) as signal_date,
    cast(null as varchar) as person_id,
    cast(null as varchar) as gemeente_code,
    cast(null as varchar[]) as qualifying_partners
where false
