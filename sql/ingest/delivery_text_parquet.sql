-- grain: one row per record of a delivered Parquet file, every column as text, plus its line.
-- Run after the columns were checked against the contract, so `*` is the contract's columns.
-- Parameters: $parquet_path.
-- `line` (a keyword, but the name GX reports offending rows by) is the file line number.
create or replace table delivery_text as
select
    file_row_number + 1 as line,  -- noqa: RF04
    columns(* exclude (file_row_number))::varchar
from read_parquet($parquet_path, file_row_number = true);
