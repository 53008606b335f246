-- grain: one row per signal with feedback that counts on $run_date (rules.md section 5):
-- statuses dated on or before the run date, about signals of a date before $signals_before;
-- per signal the latest status_date stands (a tie: the later intake, file and line). For the
-- signal rules $signals_before is the run date itself: feedback about a date's own signals
-- never changes them, so a rerun of the last delivered date re-delivers the same signals.
select
    fed.gemeente_code,
    fed.signal_id,
    fed.signal_date,
    fed.person_id,
    fed.qualifying_partners,
    fed.status_date,
    fed.status,
    fed.result
from read_parquet($feedback_files) as fed
where
    fed.status_date <= cast($run_date as date)
    and fed.signal_date < cast($signals_before as date)
qualify row_number() over (
    partition by fed.signal_id
    order by fed.status_date desc, fed.intake_id desc, fed.file desc, fed.line desc
) = 1
