-- grain: one row per data row of one parsed feedback file, appended after the files before it
insert into feedback_text by name
select
    delivery_text.* exclude (line),
    $offset + delivery_text.line as line,  -- noqa: RF04
    $file_no as file_no,
    delivery_text.line as file_line
from delivery_text;
