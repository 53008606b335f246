-- grain: one row per number of partners with arrears (1..8) in the run
with counts as (
    select
        persons.n_partners,
        count(*) as persons
    from persons
    where persons.n_partners >= 1
    group by persons.n_partners
)

select
    cast($run_date as date) as run_date,
    cast(bucket.n_partners as integer) as n_partners,
    coalesce(counts.persons, 0) as persons
from range(1, 9) as bucket (n_partners)
left join counts on bucket.n_partners = counts.n_partners
order by bucket.n_partners
