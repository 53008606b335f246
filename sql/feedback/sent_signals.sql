-- grain: one row per signal and gemeente it was delivered to, on the ledger dates named by the
-- feedback's signal ids (a rerun re-delivers the same ids; should it route one elsewhere, the
-- gemeente that received the first delivery may still report on it; the latest counts)
select
    sent.signal_id,
    sent.run_date as signal_date,
    sent.person_id,
    sent.gemeente_code,
    sent.qualifying_partners
from read_parquet($ledger_files, filename = true) as sent
qualify row_number() over (
    partition by sent.signal_id, sent.gemeente_code order by sent.filename desc
) = 1
