-- grain: one row per reason persons of the run who met a signal reason were held back, in the
-- order the report lists them, only reasons that count at least one person. kind: 'held' (a
-- reason of its own; these add up to the persons held back), 'of_which' (part of the reason
-- above it: the longer cool-down after no_help_wanted, help reported by a gemeente) or
-- 'information' (rerouted: signalled, to the next gemeente of the person's claims). From the
-- run's own monitoring file, since the snapshot keeps the monitoring of delivered nights only;
-- a file written before contract 1.6.0 lacks the feedback columns, which then count as 0.
with feedback_columns as (
    select
        cast(null as bigint) as excluded_after_help,
        cast(null as bigint) as suppressed_no_help_wanted,
        cast(null as bigint) as held_deceased,
        cast(null as bigint) as held_not_resident,
        cast(null as bigint) as rerouted
    where false
),

made as (
    select * from feedback_columns
    union all by name
    select * from read_parquet($monitoring_file)
),

monitoring as (
    select
        coalesce(sum(made.signals), 0) as signals,
        coalesce(sum(made.suppressed_repeats), 0) as suppressed_repeats,
        coalesce(sum(made.suppressed_no_help_wanted), 0) as suppressed_no_help_wanted,
        coalesce(sum(made.excluded_debt_assistance), 0) as excluded_debt_assistance,
        coalesce(sum(made.excluded_after_help), 0) as excluded_after_help,
        coalesce(sum(made.held_deceased), 0) as held_deceased,
        coalesce(sum(made.held_not_resident), 0) as held_not_resident,
        coalesce(sum(made.rerouted), 0) as rerouted
    from made
),

undelivered as (
    select runs.signals_delivered
    from runs
    where runs.run_date = $run_date and not runs.signals_delivered
),

held as (
    select
        1 as listed_at,
        'cooldown' as reason,
        'held' as kind,
        monitoring.suppressed_repeats as persons
    from monitoring
    union all
    select
        2 as listed_at,
        'cooldown_no_help_wanted' as reason,
        'of_which' as kind,
        monitoring.suppressed_no_help_wanted as persons
    from monitoring
    union all
    select
        3 as listed_at,
        'excluded' as reason,
        'held' as kind,
        monitoring.excluded_debt_assistance as persons
    from monitoring
    union all
    select
        4 as listed_at,
        'excluded_after_help' as reason,
        'of_which' as kind,
        monitoring.excluded_after_help as persons
    from monitoring
    union all
    select
        5 as listed_at,
        'deceased' as reason,
        'held' as kind,
        monitoring.held_deceased as persons
    from monitoring
    union all
    select
        6 as listed_at,
        'not_resident' as reason,
        'held' as kind,
        monitoring.held_not_resident as persons
    from monitoring
    union all
    select
        7 as listed_at,
        'not_delivered' as reason,
        'held' as kind,
        monitoring.signals as persons
    from monitoring
    cross join undelivered
    union all
    select
        8 as listed_at,
        'rerouted' as reason,
        'information' as kind,
        monitoring.rerouted as persons
    from monitoring
)

select
    held.reason,
    held.kind,
    held.persons
from held
where held.persons > 0
order by held.listed_at
