-- grain: one row per partner with claims in the run
select distinct claims.partner
from claims
where claims.run_date = $run_date
order by claims.partner
