-- grain: one row per data row of the feedback files that passed the contract, typed, with its
-- file (by number) and its line in that file
select -- noqa: ST06
    lines_.file_no,
    staged.* exclude (line),
    lines_.file_line as line  -- noqa: RF04
from delivery_staged as staged
inner join feedback_lines as lines_ on staged.line = lines_.line
where not list_contains($refused, lines_.file_no)
order by lines_.file_no, lines_.file_line
