-- grain: one row per feedback row the retention period keeps, with its rows file: every row
-- about a signal of a date kept, and of the older signals only a standing status whose effect
-- lasts: deceased, not_resident (never signalled again, never routed there again), and help or
-- no_help_wanted dated less than $lasting_days before the cut (its exclusion or longer
-- cool-down still runs)
with fed as (
    select
        *,
        row_number() over (
            partition by signal_id
            order by status_date desc, intake_id desc, file desc, line desc
        ) = 1 as standing
    from read_parquet($feedback_files, filename = true)
)

select fed.* exclude (fed.standing)
from fed
where
    fed.signal_date >= cast($before as date)
    or (fed.standing and fed.status in ('deceased', 'not_resident'))
    or (
        fed.standing
        and fed.status = 'picked_up'
        and list_contains($lasting_results, fed.result)
        and fed.status_date + to_days(cast($lasting_days as integer)) >= cast($before as date)
    )
