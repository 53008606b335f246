-- grain: one row per partner and month of signal_date with a signal in which the partner
-- qualified: how many, and how many of them stand as picked up or not picked up on $as_of
with sent as (
    select
        partners.partner,
        cast(date_trunc('month', partners.run_date) as date) as month,  -- noqa: RF04
        sum(partners.signals) as signals
    from signal_partners as partners
    where partners.run_date <= cast($as_of as date)
    group by partners.partner, month
),

fed as (
    select
        qualified.partner,
        cast(date_trunc('month', standing.signal_date) as date) as month,  -- noqa: RF04
        count(*) filter (where standing.status = 'picked_up') as picked_up,
        count(*) filter (
            where standing.status like 'not\_picked\_up\_%' escape '\'
        ) as not_picked_up
    from feedback_standing as standing, unnest(standing.qualifying_partners) as qualified (partner)
    where
        standing.signal_date >= cast($since as date)
        -- only nights that counted their signals per partner (contract 1.6.0 on)
        and standing.signal_date in (select partners.run_date from signal_partners as partners)
    group by qualified.partner, month
)

select
    cast($as_of as date) as as_of,
    sent.partner,
    sent.month,
    cast(sent.signals as bigint) as signals,
    cast(coalesce(fed.picked_up, 0) as bigint) as picked_up,
    cast(coalesce(fed.not_picked_up, 0) as bigint) as not_picked_up
from sent
left join fed on sent.partner = fed.partner and sent.month = fed.month
order by sent.month, sent.partner
