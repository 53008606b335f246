-- grain: one row per rows file of the feedback ledger with a row the retention period does not
-- keep (feedback_kept)
with rows_in as (
    select
        fed.filename,
        count(*) as all_rows
    from read_parquet($feedback_files, filename = true) as fed
    group by fed.filename
),

rows_kept as (
    select
        feedback_kept.filename,
        count(*) as kept
    from feedback_kept
    group by feedback_kept.filename
)

select rows_in.filename
from rows_in
left join rows_kept on rows_in.filename = rows_kept.filename
where rows_in.all_rows > coalesce(rows_kept.kept, 0)
order by rows_in.filename
