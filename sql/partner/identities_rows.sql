-- grain: one row per person and gemeente given a sealed identity, in the order of the relation
-- identities_sealed (gemeente, then pseudonym): the identities dataset's data file, exactly the
-- identities contract's columns in its order
select
    identities_sealed.person_pseudonym,
    identities_sealed.gemeente_code,
    identities_sealed.identity_sealed
from identities_sealed
