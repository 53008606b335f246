-- grain: one row per signal and status date: the row that stands for the pair (the latest
-- intake, file and line; the others can never count, on any run date, since rules.md section 5
-- takes the latest status_date and breaks a tie by them), of the rows the retention period
-- keeps: every row about a signal of a date kept ($before on); of the older signals, whose
-- runs are refused, the status standing on the newest run date ($as_of) when its effect lasts:
-- deceased, not_resident (never signalled again, never routed there again), and help or
-- no_help_wanted dated less than $lasting_days before the cut (its exclusion or longer
-- cool-down still runs); and any status dated after $as_of, which has not counted yet and will
-- replace it when it does. The columns of an intake's rows file, in order. One window: in
-- latest-first order a row stands for its pair when the row before it has another status
-- date, and for its signal on $as_of when it is the first dated on or before $as_of.
with fed as (
    select
        *,
        coalesce(lag(status_date) over latest_first <> status_date, true) as stands_for_pair,
        status_date <= cast($as_of as date)
        and count(*) filter (where status_date <= cast($as_of as date)) over (
            latest_first rows between unbounded preceding and current row
        ) = 1 as standing
    from read_parquet($feedback_files)
    window latest_first as (
        partition by signal_id
        order by status_date desc, intake_id desc, file desc, line desc
    )
)

select fed.* exclude (fed.standing, fed.stands_for_pair)
from fed
where
    fed.stands_for_pair
    and (
        fed.signal_date >= cast($before as date)
        or fed.status_date > cast($as_of as date)
        or (fed.standing and fed.status in ('deceased', 'not_resident'))
        or (
            fed.standing
            and fed.status = 'picked_up'
            and list_contains($lasting_results, fed.result)
            and fed.status_date + to_days(cast($lasting_days as integer)) >= cast($before as date)
        )
    )
