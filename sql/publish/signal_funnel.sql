-- grain: one row per gemeente (or 'ALL') and month of signal_date with a signal sent or a
-- status standing on $as_of (rules.md section 5, "Monitoring"); contact made: picked up with a
-- result other than no_contact and referred_without_contact (a picked-up signal without a
-- result yet is not counted as contact)
with sent as (
    select
        monitoring.gemeente_code,
        cast(date_trunc('month', monitoring.run_date) as date) as month,  -- noqa: RF04
        sum(monitoring.signals) as signals_sent,
        coalesce(sum(monitoring.with_identity), 0) as with_identity
    from signal_monitoring as monitoring
    where monitoring.run_date <= cast($as_of as date)
    group by monitoring.gemeente_code, month
),

fed as (
    select
        standing.gemeente_code,
        cast(date_trunc('month', standing.signal_date) as date) as month,  -- noqa: RF04
        count(*) as feedback_received,
        count(*) filter (where standing.status = 'picked_up') as picked_up,
        count(*) filter (
            where
            standing.status = 'picked_up'
            and standing.result not in ('no_contact', 'referred_without_contact')
        ) as contact_made,
        count(*) filter (
            where standing.status = 'picked_up' and standing.result = 'follow_up_help'
        ) as help_started,
        count(*) filter (where standing.status = 'not_picked_up_unjustified') as unjustified,
        count(*) filter (where standing.status = 'not_picked_up_repeat') as repeats,
        count(*) filter (where standing.status = 'not_resident') as not_resident,
        count(*) filter (where standing.status = 'deceased') as deceased
    from feedback_standing as standing
    where standing.signal_date >= cast($since as date)
    group by standing.gemeente_code, month
),

per_gemeente as (
    select
        coalesce(sent.gemeente_code, fed.gemeente_code) as gemeente_code,
        coalesce(sent.month, fed.month) as month,  -- noqa: RF04
        coalesce(sent.signals_sent, 0) as signals_sent,
        coalesce(sent.with_identity, 0) as with_identity,
        coalesce(fed.feedback_received, 0) as feedback_received,
        coalesce(fed.picked_up, 0) as picked_up,
        coalesce(fed.contact_made, 0) as contact_made,
        coalesce(fed.help_started, 0) as help_started,
        coalesce(fed.unjustified, 0) as unjustified,
        coalesce(fed.repeats, 0) as repeats,
        coalesce(fed.not_resident, 0) as not_resident,
        coalesce(fed.deceased, 0) as deceased
    from sent
    full outer join fed
        on sent.gemeente_code = fed.gemeente_code and sent.month = fed.month
),

national as (
    select
        'ALL' as gemeente_code,
        per_gemeente.month,
        sum(per_gemeente.signals_sent) as signals_sent,
        sum(per_gemeente.with_identity) as with_identity,
        sum(per_gemeente.feedback_received) as feedback_received,
        sum(per_gemeente.picked_up) as picked_up,
        sum(per_gemeente.contact_made) as contact_made,
        sum(per_gemeente.help_started) as help_started,
        sum(per_gemeente.unjustified) as unjustified,
        sum(per_gemeente.repeats) as repeats,
        sum(per_gemeente.not_resident) as not_resident,
        sum(per_gemeente.deceased) as deceased
    from per_gemeente
    group by per_gemeente.month
)

select
    cast($as_of as date) as as_of,
    rows_.gemeente_code,
    rows_.month,
    cast(rows_.signals_sent as bigint) as signals_sent,
    cast(rows_.with_identity as bigint) as with_identity,
    cast(rows_.feedback_received as bigint) as feedback_received,
    cast(rows_.picked_up as bigint) as picked_up,
    cast(rows_.contact_made as bigint) as contact_made,
    cast(rows_.help_started as bigint) as help_started,
    cast(rows_.unjustified as bigint) as unjustified,
    cast(rows_.repeats as bigint) as repeats,
    cast(rows_.not_resident as bigint) as not_resident,
    cast(rows_.deceased as bigint) as deceased
from (
    select * from per_gemeente
    union all
    select * from national
) as rows_
order by rows_.month, rows_.gemeente_code
