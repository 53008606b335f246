-- grain: one row per signal, as the gemeente's signal file shows it (person_ref, not person_id)
-- the columns in the order of the signal file (version 2: the sealed identity last), then
-- the staged identities file the value came from (its key files: for the outbox, not the file)
select -- noqa: ST06
    signals.gemeente_code,
    signals.signal_id,
    signals.run_date as signal_date,
    refs.person_ref,
    signals.reasons,
    array_to_string(signals.partners, '|') as partners,
    signals.arrears_cents,
    signals.outstanding_cents,
    signals.arrears_since,
    signals.plan_outcome,
    signals.plan_monthly_cents,
    signals.crisis,
    ids.identity_key,
    ids.identity_sealed,
    ids.identity_file
from signals
left join signal_identities as ids
    on signals.signal_id = ids.signal_id
inner join person_refs as refs
    on
        signals.person_id = refs.person_id
        and signals.gemeente_code = refs.gemeente_code
order by signals.gemeente_code, signals.signal_id
