-- grain: one row per gemeente_code among the accepted rows of the raw extract, in code order:
-- the number of persons (distinct pseudonyms) an identity would be sealed for in that gemeente
select
    pseudonymised.gemeente_code,
    count(distinct pseudonymised.person_pseudonym) as persons
from pseudonymised
where
    pseudonymised.rejection_reason is null
    and pseudonymised.gemeente_code is not null
group by pseudonymised.gemeente_code
order by pseudonymised.gemeente_code
