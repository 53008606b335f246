-- grain: one row per partner that qualified for at least one signal of the run: in how many
-- (the denominator of the partner's picked-up share, rules.md section 5)
select
    cast($run_date as date) as run_date,
    qualified.partner,
    count(*) as signals
from signals, unnest(signals.qualifying_partners) as qualified (partner)
group by qualified.partner
