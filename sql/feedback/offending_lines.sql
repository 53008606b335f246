-- grain: one row per file with rows that break one rule: how many, and their first lines
select
    lines_.file_no,
    count(*) as offending,
    list(lines_.file_line order by lines_.file_line)[1:10] as example_lines
from offending
inner join feedback_lines as lines_ on offending.line = lines_.line
group by lines_.file_no
