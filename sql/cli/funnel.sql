-- grain: one row per month of signal_date: the national funnel of what became of the signals
select
    month,
    signals_sent,
    with_identity,
    feedback_received,
    picked_up,
    contact_made,
    help_started,
    unjustified,
    repeats,
    not_resident,
    deceased
from signal_funnel
where gemeente_code = 'ALL'
order by month
