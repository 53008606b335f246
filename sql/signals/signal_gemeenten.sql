-- grain: one row per gemeente with signals in the run, in code order
select distinct signals.gemeente_code
from signals
order by signals.gemeente_code
