-- grain: one row per feedback row of one rows file that the retention period keeps, in the
-- file's own columns
select feedback_kept.* exclude (feedback_kept.filename)
from feedback_kept
where feedback_kept.filename = $file
order by feedback_kept.file, feedback_kept.line
