-- grain: one row per feedback row of a checked file, with the signal it is about when that
-- signal was sent to the file's gemeente (else signal_date is null: the row is ignored)
select
    cast($gemeente as varchar) as gemeente_code,
    feedback_in.signal_id,
    sent.signal_date,
    sent.person_id,
    sent.qualifying_partners,
    feedback_in.status_date,
    feedback_in.status,
    feedback_in.result,
    cast($file as varchar) as file,  -- noqa: RF04
    cast($sha256 as varchar) as sha256,
    feedback_in.line  -- noqa: RF04
from checked_rows as feedback_in
left join sent_signals as sent
    on
        feedback_in.signal_id = sent.signal_id
        and sent.gemeente_code = $gemeente
order by feedback_in.line
