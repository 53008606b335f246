-- grain: one row per number of partners with arrears in the run
select
    overlap_counts.n_partners,
    overlap_counts.persons
from overlap_counts
where overlap_counts.run_date = $run_date
order by overlap_counts.n_partners
