-- grain: one row per person who meets a signal reason in the run, with what was decided
-- (rules.md sections 4 and 5), in this order: held_deceased (a gemeente reported the person
-- deceased), excluded (debt assistance on a claim, or help reported by a gemeente within
-- $exclusion_days of its status_date), held_not_resident (every gemeente of the person's claims
-- said the person does not live there), suppressed_repeat (cool-down: $cooldown_days, or
-- $feedback_cooldown_days after no_help_wanted), else signalled. gemeente_code: where the
-- signal goes (the usual routing among the gemeenten not reported not_resident).
--
-- Only a person in arrears at 2+ partners can meet a reason: MULTI_ARREARS needs two
-- qualifying partners, each one with arrears there (oldest_arrears_since counts arrears > 0
-- only), and NO_CAPACITY a plan proposal, which plans makes for 2+ partners only. So the
-- claims of everyone else (about three quarters of the persons) are left out first.
with multi_partner_claims as (
    select claims.*
    from claims
    where claims.person_id in (
        select persons.person_id
        from persons
        where persons.n_partners >= 2
    )
),

per_partner as (
    select
        claims.person_id,
        claims.partner,
        sum(claims.arrears_cents) as arrears_cents,
        min(claims.arrears_since) filter (where claims.arrears_cents > 0) as oldest_arrears_since
    from multi_partner_claims as claims
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
    from multi_partner_claims as claims
    group by claims.person_id
),

gemeente_counts as (
    select
        claims.person_id,
        claims.gemeente_code,
        count(*) as claims_there
    from multi_partner_claims as claims
    group by claims.person_id, claims.gemeente_code
),

routed as (
    -- the routing rule of sql/link/persons.sql (the gemeente on most of the person's claims;
    -- ties go to the smallest code), among the gemeenten that did not report the person not
    -- resident (rules.md section 5); persons.gemeente_code stays the rule without feedback
    select
        gemeente_counts.person_id,
        arg_min(
            gemeente_counts.gemeente_code,
            (-gemeente_counts.claims_there, gemeente_counts.gemeente_code)
        ) as gemeente_code
    from gemeente_counts
    left join feedback_effects as effects on gemeente_counts.person_id = effects.person_id
    where not coalesce(list_contains(effects.not_resident_in, gemeente_counts.gemeente_code), false)
    group by gemeente_counts.person_id
),

candidates as (
    select
        persons.person_id,
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
        coalesce(proposals.outcome = 'refer', false) as no_capacity,
        coalesce(routed.gemeente_code, persons.gemeente_code) as gemeente_code,
        routed.gemeente_code is null as not_resident_anywhere,
        coalesce(routed.gemeente_code <> persons.gemeente_code, false) as rerouted,
        coalesce(effects.deceased, false) as deceased,
        coalesce(
            date_diff('day', effects.helped_on, cast($run_date as date)) <= $exclusion_days,
            false
        ) as helped,
        coalesce(effects.no_help_wanted, false) as no_help_wanted
    from persons
    inner join crisis on persons.person_id = crisis.person_id
    left join qualifying on persons.person_id = qualifying.person_id
    left join plan_proposals as proposals on persons.person_id = proposals.person_id
    left join routed on persons.person_id = routed.person_id
    left join feedback_effects as effects on persons.person_id = effects.person_id
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
            <= if(candidates.no_help_wanted, $feedback_cooldown_days, $cooldown_days),
            false
        ) as in_cooldown,
        coalesce(
            date_diff('day', last_signal.last_signal_date, cast($run_date as date))
            > $cooldown_days,
            false
        ) as beyond_usual_cooldown,
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
    judged.rerouted,
    cast($run_date as date) as run_date,
    case
        when judged.deceased then 'held_deceased'
        when judged.debt_assistance or judged.helped then 'excluded'
        when judged.not_resident_anywhere then 'held_not_resident'
        when judged.in_cooldown and not judged.escalates then 'suppressed_repeat'
        else 'signalled'
    end as decision,
    -- which feedback effect decided (for the monitoring): help reported (and no partner's
    -- debt-assistance flag), a repeat held back only by the longer cool-down
    judged.helped and not judged.debt_assistance as excluded_after_help,
    judged.in_cooldown and judged.beyond_usual_cooldown as longer_cooldown,
    concat_ws(
        '|',
        case when judged.multi_arrears then 'MULTI_ARREARS' end,
        case when judged.no_capacity then 'NO_CAPACITY' end,
        case when judged.in_cooldown and judged.escalates then 'ESCALATION' end
    ) as reasons
from judged
