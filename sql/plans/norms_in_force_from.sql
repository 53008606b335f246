-- grain: one row: the first date on which the reference has a bijstandsnorm for every household
-- norm (before it, capacity is unknown for the households whose norm is not yet in force)
select max(firsts.first_valid_from) as in_force_from
from (
    select
        ref_norms.household_norm,
        min(ref_norms.valid_from) as first_valid_from
    from ref_norms
    group by ref_norms.household_norm
) as firsts
