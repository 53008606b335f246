-- grain: one row per feedback row of a checked file, with the signal it is about when that
-- signal was sent to the file's gemeente (else signal_date is null: the row is ignored)
select
    feedback_in.file_no,
    files.gemeente_code,
    feedback_in.signal_id,
    sent.signal_date,
    sent.person_id,
    sent.qualifying_partners,
    feedback_in.status_date,
    feedback_in.status,
    feedback_in.result,
    files.file,  -- noqa: RF04
    files.sha256,
    feedback_in.line  -- noqa: RF04
from checked_rows as feedback_in
inner join intake_files as files on feedback_in.file_no = files.file_no
left join sent_signals as sent
    on
        feedback_in.signal_id = sent.signal_id
        and files.gemeente_code = sent.gemeente_code
order by feedback_in.file_no, feedback_in.line
