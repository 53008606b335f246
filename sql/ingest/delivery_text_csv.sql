-- grain: one row per data record of a delivered CSV file, every column as text, plus its line.
-- Strict dialect; lines that do not fit go to `parse_errors` (see parse_errors.sql).
-- Parameters: $csv_path, $separator, $quote, $csv_columns (the header's names, all VARCHAR).
-- The records are stored as read, in file order (DuckDB keeps insertion order), so a record's
-- rowid is its position: `line` (a keyword, but the name offending rows are reported by) is the
-- file line number, header = line 1. Numbering while reading (`with ordinality`) would cost as
-- much again as the read itself.
create or replace table delivery_rows as
select *
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
);

create or replace view delivery_text as
select  -- noqa: ST06
    delivery_rows.rowid + 2 as line,  -- noqa: RF04
    delivery_rows.*
from delivery_rows;
