-- grain: one row per pair of partners (partner_a < partner_b) in the run
select
    overlap_pairs.partner_a,
    overlap_pairs.partner_b,
    overlap_pairs.persons
from overlap_pairs
where overlap_pairs.run_date = $run_date
order by overlap_pairs.partner_a, overlap_pairs.partner_b
