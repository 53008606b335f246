-- grain: one row per person who meets a signal reason in the run, with what was decided
-- (rules.md section 4): signalled, suppressed_repeat (cool-down) or excluded (debt assistance).
with per_partner as (
    select
        claims.person_id,
        claims.partner,
        sum(claims.arrears_cents) as arrears_cents,
        min(claims.arrears_since) filter (where claims.arrears_cents > 0) as oldest_arrears_since
    from claims
    group by claims.person_id, claims.partner
),

qualifying as (
    select
        per_partner.person_id,
        list(per_partner.partner order by per_partner.partner) as qualifying_partners
    from per_partner
    inner join signal_thresholds as thresholds on per_partner.partner = thresholds.partner
    where
        per_partner.arrears_cents >= thresholds.min_arrears_cents
        and date_diff('day', per_partner.oldest_arrears_since, cast($run_date as date))
        >= thresholds.min_days
    group by per_partner.person_id
),

crisis as (
    select
        claims.person_id,
        bool_or(claims.stage = 'garnishment') as crisis
    from claims
    group by claims.person_id
),

candidates as (
    select
        persons.person_id,
        persons.gemeente_code,
        persons.partners,
        persons.arrears_cents,
        persons.outstanding_cents,
        persons.oldest_arrears_since,
        persons.debt_assistance,
        proposals.outcome as plan_outcome,
        proposals.monthly_cents as plan_monthly_cents,
        crisis.crisis,
        coalesce(qualifying.qualifying_partners, cast([] as varchar[])) as qualifying_partners,
        coalesce(len(qualifying.qualifying_partners), 0) >= 2 as multi_arrears,
        coalesce(proposals.outcome = 'refer', false) as no_capacity
    from persons
    inner join crisis on persons.person_id = crisis.person_id
    left join qualifying on persons.person_id = qualifying.person_id
    left join plan_proposals as proposals on persons.person_id = proposals.person_id
),

last_signal as (
    -- the most recent signal on an earlier run
    select
        history.person_id,
        max(history.run_date) as last_signal_date,
        arg_max(history.qualifying_partners, history.run_date) as last_partners,
        arg_max(history.arrears_cents, history.run_date) as last_arrears_cents
    from signal_history as history
    where history.run_date < cast($run_date as date)
    group by history.person_id
),

judged as (
    select
        candidates.*,
        coalesce(
            date_diff('day', last_signal.last_signal_date, cast($run_date as date))
            <= $cooldown_days,
            false
        ) as in_cooldown,
        coalesce(
            -- the qualifying partners gained one since the last signal
            not list_has_all(last_signal.last_partners, candidates.qualifying_partners)
            or candidates.arrears_cents * 100
            >= last_signal.last_arrears_cents * $escalation_percent,
            false
        ) as escalates
    from candidates
    left join last_signal on candidates.person_id = last_signal.person_id
    where candidates.multi_arrears or candidates.no_capacity
)

select
    judged.person_id,
    judged.gemeente_code,
    judged.partners,
    judged.qualifying_partners,
    judged.arrears_cents,
    judged.outstanding_cents,
    judged.oldest_arrears_since,
    judged.plan_outcome,
    judged.plan_monthly_cents,
    judged.crisis,
    cast($run_date as date) as run_date,
    case
        when judged.debt_assistance then 'excluded'
        when judged.in_cooldown and not judged.escalates then 'suppressed_repeat'
        else 'signalled'
    end as decision,
    concat_ws(
        '|',
        case when judged.multi_arrears then 'MULTI_ARREARS' end,
        case when judged.no_capacity then 'NO_CAPACITY' end,
        case when judged.in_cooldown and judged.escalates then 'ESCALATION' end
    ) as reasons
from judged
