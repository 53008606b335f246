-- grain: one row per accepted data row, in delivered order (a plain scan of the parsed rows
-- keeps their order, so no sort): the contract's typed columns plus the partner and extract
-- date the manifest names (view `delivery_staged`, built by the contract compiler).
-- Parameters: $partner, $extract_date.
select
    delivery_staged.* exclude (delivery_staged.line),
    $partner as partner,
    cast($extract_date as date) as extract_date
from delivery_staged
