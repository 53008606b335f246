-- grain: one row per run date, gemeente and bucket of partners in arrears (1, 2, 3, 4+)
select
    persons.run_date,
    persons.gemeente_code,
    case
        when persons.n_partners >= 4 then '4+' else cast(persons.n_partners as varchar)
    end as bucket,
    count(*) as persons
from persons
where persons.n_partners >= 1
group by all
