-- grain: one row per run date and pair of partners; small cells (1 up to the small-cell
-- threshold of privacy.suppression) withheld; no totals are published: primary suppression only
select
    overlap_pairs.run_date,
    overlap_pairs.partner_a,
    overlap_pairs.partner_b,
    case
        when overlap_pairs.persons between 1 and $small_cell - 1 then null
        else overlap_pairs.persons
    end as persons,
    overlap_pairs.persons between 1 and $small_cell - 1 as suppressed
from overlap_pairs
order by all
