-- grain: none; the lines the previous file could not parse, forgotten before the next file is
-- parsed in the same connection (DuckDB adds each scan's rejects to the same tables)
drop table if exists parse_errors;
drop table if exists parse_scans;
