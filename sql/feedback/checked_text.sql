-- grain: none; the rows of every parsed file as one delivery for the contract (`line` unique
-- across files), and `feedback_lines` to tell each row's file and line in it
create table delivery_text as
select
    feedback_text.line,
    feedback_text.signal_id,
    feedback_text.status_date,
    feedback_text.status,
    feedback_text.result
from feedback_text;

create table feedback_lines as
select
    feedback_text.line,
    feedback_text.file_no,
    feedback_text.file_line
from feedback_text;
