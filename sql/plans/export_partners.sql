-- grain: one row per partner with plan lines in the run, in code order
select distinct partner_export.partner
from partner_export
order by partner_export.partner
