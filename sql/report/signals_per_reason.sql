-- grain: one row per signal reason among the delivered signals of the run
select
    reason_of.reason,
    count(*) as signals
from signals,
    unnest(string_split(signals.reasons, '|')) as reason_of (reason)
where signals.run_date = $run_date
group by reason_of.reason
order by signals desc, reason_of.reason asc
