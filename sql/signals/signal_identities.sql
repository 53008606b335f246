-- grain: one row per signal with a sealed identity for the gemeente it goes to (rules.md, "Signal
-- file, version 2"): of the partners that have one, the first in alphabetical order of code; of
-- that partner's datasets (the night uses one: tonight's or carried forward), the latest
-- extract. The value is copied unchanged; the hub cannot open it. Reads `signals`,
-- `staged_identities` (partner, extract_date: the date the values were sealed on; filename: the
-- staged file, whose folder holds the key files) and `person_ids`.
select
    signals.signal_id,
    staged_identities.identity_sealed,
    staged_identities.filename as identity_file,
    staged_identities.partner
    || '-'
    || strftime(staged_identities.extract_date, '%Y-%m-%d') as identity_key
from signals
inner join person_ids
    on signals.person_id = person_ids.person_id
inner join staged_identities
    on
        person_ids.person_pseudonym = staged_identities.person_pseudonym
        and signals.gemeente_code = staged_identities.gemeente_code
qualify
    row_number()
        over (
            partition by signals.signal_id
            order by
                staged_identities.partner asc,
                staged_identities.extract_date desc,
                staged_identities.filename desc
        )
    = 1
