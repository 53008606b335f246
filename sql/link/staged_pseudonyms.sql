-- grain: one row per staged claim or income row of the run (its linkage pseudonym only)
select staged_claims.person_pseudonym from staged_claims
union all
select staged_income.person_pseudonym from staged_income
