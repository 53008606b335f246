-- grain: one row per identities row of a gemeente that receives a signal tonight: the linkage
-- pseudonyms whose hub person id is needed to find a signalled person's sealed identity.
select staged_identities.person_pseudonym
from staged_identities
where staged_identities.gemeente_code in (select signals.gemeente_code from signals)
