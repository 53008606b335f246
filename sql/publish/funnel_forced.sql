-- grain: one row per gemeente (or ALL), month and measure of the funnel whose value is the
-- total of nights one of which agg_signal_monitoring withholds: withheld in the funnel too, or
-- the withheld night would follow by subtraction (the nights' `signals` are the funnel's
-- `signals_sent`)
select distinct
    monitoring.gemeente_code,
    cast(date_trunc('month', monitoring.run_date) as date) as month,  -- noqa: RF04
    case
        when monitoring.measure = 'signals' then 'signals_sent' else monitoring.measure
    end as measure
from agg_signal_monitoring as monitoring
where monitoring.suppressed and monitoring.measure in ('signals', 'with_identity')
