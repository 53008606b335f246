-- grain: one row per accepted row of the raw extract, in file order: the delivery's data file
-- (exactly the contract's columns, in its order: see pseudonymised_extract.sql)
select * exclude (source_row, rejection_reason)
from pseudonymised
where rejection_reason is null
order by source_row
