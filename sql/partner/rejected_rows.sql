-- grain: one row per rejected row of the raw extract, in file order: its line and reason only
-- (never the value). line_offset is 1 for CSV (line 1 is the header), 0 for Parquet.
-- The reject file's header is `line;reason`, in that order.
select -- noqa: ST06
    pseudonymised.source_row + $line_offset as line, -- noqa: RF04
    pseudonymised.rejection_reason as reason
from pseudonymised
where pseudonymised.rejection_reason is not null
order by pseudonymised.source_row
