-- grain: one row for the run: its signals per reason, and what was held back and why
select
    coalesce(sum(signal_monitoring.signals), 0) as signals,
    coalesce(sum(signal_monitoring.multi_arrears), 0) as multi_arrears,
    coalesce(sum(signal_monitoring.no_capacity), 0) as no_capacity,
    coalesce(sum(signal_monitoring.escalations), 0) as escalations,
    coalesce(sum(signal_monitoring.excluded_debt_assistance), 0) as excluded_debt_assistance,
    coalesce(sum(signal_monitoring.suppressed_repeats), 0) as suppressed_repeats,
    coalesce(sum(signal_monitoring.excluded_after_help), 0) as excluded_after_help,
    coalesce(sum(signal_monitoring.suppressed_no_help_wanted), 0) as suppressed_no_help_wanted,
    coalesce(sum(signal_monitoring.held_deceased), 0) as held_deceased,
    coalesce(sum(signal_monitoring.held_not_resident), 0) as held_not_resident,
    coalesce(sum(signal_monitoring.rerouted), 0) as rerouted
from signal_monitoring
