-- grain: one row per person of a committed run date, with persistence from the run before it
select
    persons.person_id,
    cast(
        case
            when persons.n_partners >= 2
                then coalesce(previous.persistence_runs, 0) + 1
            else 0
        end as integer
    ) as persistence_runs
from persons
left join previous_persons as previous on persons.person_id = previous.person_id
