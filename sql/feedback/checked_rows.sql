-- grain: one row per data row of a feedback file that passed its contract, typed, with its line
select * from delivery_staged
order by line
