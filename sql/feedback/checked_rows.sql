-- grain: one row per data row of one feedback file that passed the contract, typed, with its
-- line in that file
select
    staged.* exclude (line),
    lines_.file_line as line  -- noqa: RF04
from delivery_staged as staged
inner join feedback_lines as lines_ on staged.line = lines_.line
where lines_.file_no = $file_no
order by lines_.file_line
