-- grain: one row per person with standing feedback: what it changes on the run (rules.md
-- section 5). helped_on: the latest status_date of a picked-up signal whose result means help
-- (the exclusion runs through helped_on + exclusion_days); not_resident_in: the gemeenten
-- that said the person does not live there.
select
    standing.person_id,
    bool_or(standing.status = 'deceased') as deceased,
    max(standing.status_date) filter (
        where
        standing.status = 'picked_up'
        and list_contains($exclusion_results, standing.result)
    ) as helped_on,
    bool_or(coalesce(standing.result = 'no_help_wanted', false)) as no_help_wanted,
    coalesce(
        list(distinct standing.gemeente_code) filter (where standing.status = 'not_resident'),
        cast([] as varchar[])
    ) as not_resident_in
from feedback_standing as standing
group by standing.person_id
