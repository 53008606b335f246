-- grain: one row per number of consecutive runs at two or more partners
select
    persons.persistence_runs,
    count(*) as persons
from persons
where persons.run_date = $run_date and persons.n_partners >= 2
group by persons.persistence_runs
order by persons.persistence_runs
