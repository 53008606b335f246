-- grain: one row per CSV line that does not fit the dialect (never its content).
select
    parse_errors.line,
    parse_errors.error_type
from parse_errors
order by parse_errors.line
