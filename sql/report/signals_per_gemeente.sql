-- grain: one row per gemeente_code with delivered signals of the run (top 20 by signals)
select
    signals.gemeente_code,
    count(*) as signals
from signals
where signals.run_date = $run_date
group by signals.gemeente_code
order by signals desc, signals.gemeente_code asc
limit 20
