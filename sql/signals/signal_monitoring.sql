-- grain: one row per gemeente with a signal decision in the run: the counts per decision
-- (with_identity is known once the signal files are made: the ledger's copy has it)
select
    signal_decisions.gemeente_code,
    cast($run_date as date) as run_date,
    cast(null as bigint) as with_identity,
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
    ) as suppressed_repeats,
    count(*) filter (
        where signal_decisions.decision = 'excluded' and signal_decisions.excluded_after_help
    ) as excluded_after_help,
    count(*) filter (
        where
        signal_decisions.decision = 'suppressed_repeat' and signal_decisions.longer_cooldown
    ) as suppressed_no_help_wanted,
    count(*) filter (where signal_decisions.decision = 'held_deceased') as held_deceased,
    count(*) filter (
        where signal_decisions.decision = 'held_not_resident'
    ) as held_not_resident,
    count(*) filter (
        where signal_decisions.decision = 'signalled' and signal_decisions.rerouted
    ) as rerouted
from signal_decisions
group by signal_decisions.gemeente_code
