-- grain: one row per pair of partners, the five with the most shared persons on one run date
select
    persons,
    partner_a || ' + ' || partner_b as pair
from overlap_pairs
where run_date = $run_date
order by persons desc
limit 5
