-- grain: one row per reason signals of the run were held back (cooldown, excluded,
-- not_delivered), only reasons that held back at least one; from the run's own monitoring
-- file, since the snapshot keeps the monitoring of delivered nights only.
with monitoring as (
    select
        coalesce(sum(made.signals), 0) as signals,
        coalesce(sum(made.suppressed_repeats), 0) as suppressed_repeats,
        coalesce(sum(made.excluded_debt_assistance), 0) as excluded_debt_assistance
    from read_parquet($monitoring_file) as made
),

undelivered as (
    select runs.signals_delivered
    from runs
    where runs.run_date = $run_date and not runs.signals_delivered
),

held as (
    select
        'cooldown' as reason,
        monitoring.suppressed_repeats as persons
    from monitoring
    union all
    select
        'excluded' as reason,
        monitoring.excluded_debt_assistance as persons
    from monitoring
    union all
    select
        'not_delivered' as reason,
        monitoring.signals as persons
    from monitoring
    cross join undelivered
)

select
    held.reason,
    held.persons
from held
where held.persons > 0
