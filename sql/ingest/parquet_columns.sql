-- grain: one row per column of a delivered Parquet file: its name and DuckDB type.
-- Parameters: $parquet_path.
describe select * from read_parquet($parquet_path)
