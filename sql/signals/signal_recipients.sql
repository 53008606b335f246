-- grain: one row per signal: the person and the gemeente that receives it
select
    signals.person_id,
    signals.gemeente_code
from signals
