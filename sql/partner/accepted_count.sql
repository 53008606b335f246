-- grain: one row: the number of accepted rows of the raw extract
select count(*) as rows_written
from pseudonymised
where pseudonymised.rejection_reason is null
