-- grain: one row for the run: its signals per reason, exclusions and cool-down repeats
select
    coalesce(sum(signal_monitoring.signals), 0) as signals,
    coalesce(sum(signal_monitoring.multi_arrears), 0) as multi_arrears,
    coalesce(sum(signal_monitoring.no_capacity), 0) as no_capacity,
    coalesce(sum(signal_monitoring.escalations), 0) as escalations,
    coalesce(sum(signal_monitoring.excluded_debt_assistance), 0) as excluded_debt_assistance,
    coalesce(sum(signal_monitoring.suppressed_repeats), 0) as suppressed_repeats
from signal_monitoring
