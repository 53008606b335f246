-- grain: none; the night's feedback rows as text, every file after the other: `line` numbers
-- the rows of all files in turn, `file_no` and `file_line` say where each came from
create table feedback_text (
    line bigint,  -- noqa: RF04
    file_no integer,
    file_line bigint,
    signal_id varchar,
    status_date varchar,
    status varchar,
    result varchar
);
