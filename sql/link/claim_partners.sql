-- grain: one row per partner with a claim in the run, in code order
select distinct claims.partner
from claims
order by claims.partner
