-- grain: one row per number of partners with arrears, on one run date (the run's summary)
select
    n_partners,
    persons
from overlap_counts
where run_date = $run_date
order by n_partners
