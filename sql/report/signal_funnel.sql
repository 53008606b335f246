-- grain: one row: the national funnel (gemeente_code 'ALL' of signal_funnel, as of the
-- newest run date) summed over every month of signal_date in the snapshot; the counts are 0
-- and the months null when the table has no row (no signal sent yet)
select
    max(funnel.as_of) as as_of,
    min(funnel.month) as first_month,
    max(funnel.month) as last_month,
    coalesce(sum(funnel.signals_sent), 0) as signals_sent,
    coalesce(sum(funnel.with_identity), 0) as with_identity,
    coalesce(sum(funnel.feedback_received), 0) as feedback_received,
    coalesce(sum(funnel.picked_up), 0) as picked_up,
    coalesce(sum(funnel.contact_made), 0) as contact_made,
    coalesce(sum(funnel.help_started), 0) as help_started,
    coalesce(sum(funnel.unjustified), 0) as unjustified,
    coalesce(sum(funnel.repeats), 0) as repeats,
    coalesce(sum(funnel.not_resident), 0) as not_resident,
    coalesce(sum(funnel.deceased), 0) as deceased
from signal_funnel as funnel
where funnel.gemeente_code = 'ALL'
