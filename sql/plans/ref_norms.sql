-- grain: one row per bijstandsnorm and valid_from date (reference/bijstandsnormen.csv)
select
    cast(norms.valid_from as date) as valid_from,
    norms.household_norm,
    cast(norms.monthly_cents as bigint) as monthly_cents
from read_csv($bijstandsnormen_csv, header = true, all_varchar = true) as norms
