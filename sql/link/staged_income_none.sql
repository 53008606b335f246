-- grain: none (no income delivered): an empty staged_income with the columns link reads
create or replace view staged_income as
select
    cast(null as varchar) as person_pseudonym,
    cast(null as varchar) as household_type,
    cast(null as bigint) as net_income_cents,
    cast(null as date) as income_month
where false;
