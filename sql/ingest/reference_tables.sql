-- grain: reference tables the contract rules join against, one row per code.
-- Parameters: $claim_types_csv, $gemeenten_csv (paths under data_contracts/reference/).
create or replace table ref_claim_types as
select
    reference_rows.partner,
    reference_rows.claim_type
from read_csv($claim_types_csv, header = true, all_varchar = true) as reference_rows;

create or replace table ref_gemeenten as
select reference_rows.gemeente_code
from read_csv($gemeenten_csv, header = true, all_varchar = true) as reference_rows;
