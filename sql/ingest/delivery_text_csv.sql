-- grain: one row per data record of a delivered CSV file, every column as text, plus its line.
-- Strict dialect; lines that do not fit go to `parse_errors` (see parse_errors.sql).
-- Parameters: $csv_path, $separator, $quote, $csv_columns (the header's names, all VARCHAR).
-- `line` (a keyword, but the name GX reports offending rows by) is the file line number.
create or replace table delivery_text as
select
    ordinality + 1 as line,  -- noqa: RF04
    * exclude (ordinality)
from read_csv(
    $csv_path,
    delim = $separator,
    quote = $quote,
    escape = $quote,
    header = true,
    auto_detect = false,
    columns = $csv_columns,
    strict_mode = true,
    null_padding = false,
    encoding = 'utf-8',
    store_rejects = true,
    rejects_table = 'parse_errors',
    rejects_scan = 'parse_scans',
    max_line_size = 1048576
) with ordinality;
