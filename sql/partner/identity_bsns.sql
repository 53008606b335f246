-- grain: one row per distinct (gemeente_code, person_pseudonym) among the accepted rows of the
-- raw extract, in gemeente then pseudonym order: the normalised BSN to seal for that gemeente.
-- bsn9 is taken from the very raw row each pseudonym was hashed from (same source_row) with the
-- normalisation of pseudonymised_extract.sql, so what is sealed is exactly what was hashed.
-- Needs: sql/privacy/bsn_macros.sql and the tables raw_extract and pseudonymised.
select distinct
    pseudonymised.gemeente_code,
    pseudonymised.person_pseudonym,
    lpad(bsn_strip(raw_extract.bsn), 9, '0') as bsn9
from pseudonymised
inner join raw_extract on pseudonymised.source_row = raw_extract.source_row
where
    pseudonymised.rejection_reason is null
    and pseudonymised.gemeente_code is not null
order by pseudonymised.gemeente_code, pseudonymised.person_pseudonym
