-- grain: one row: the number of plan lines of one partner
select count(*) as plan_lines
from partner_export
where partner_export.partner = $partner
