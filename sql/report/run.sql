-- grain: one row for the run of the date (none before its run record is published)
select
    runs.claims,
    runs.persons,
    runs.datasets_unchanged,
    runs.datasets_stale,
    runs.partners_left_out,
    runs.signals_delivered,
    runs.delivery_note
from runs
where runs.run_date = $run_date
