-- grain: none; the operator's DuckDB memory limit (CRI_DUCKDB_MEMORY_LIMIT, e.g. 4GB).
-- Parameters: $memory_limit.
set memory_limit = $memory_limit;
