-- grain: one row per feedback row of the intake about a signal sent to its gemeente (the
-- rows about other signals were ignored and listed)
select
    resolved_rows.* exclude (resolved_rows.file_no),
    cast($intake_id as varchar) as intake_id
from resolved_rows
where resolved_rows.signal_date is not null
