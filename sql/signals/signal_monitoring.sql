-- grain: one row per gemeente with a signal decision in the run: the counts per decision
select
    signal_decisions.gemeente_code,
    cast($run_date as date) as run_date,
    count(*) filter (where signal_decisions.decision = 'signalled') as signals,
    count(*) filter (
        where
        signal_decisions.decision = 'signalled'
        and signal_decisions.reasons like '%MULTI_ARREARS%'
    ) as multi_arrears,
    count(*) filter (
        where
        signal_decisions.decision = 'signalled'
        and signal_decisions.reasons like '%NO_CAPACITY%'
    ) as no_capacity,
    count(*) filter (
        where
        signal_decisions.decision = 'signalled'
        and signal_decisions.reasons like '%ESCALATION%'
    ) as escalations,
    count(*) filter (where signal_decisions.decision = 'excluded') as excluded_debt_assistance,
    count(*) filter (
        where signal_decisions.decision = 'suppressed_repeat'
    ) as suppressed_repeats
from signal_decisions
group by signal_decisions.gemeente_code
