-- grain: one row per partner with a feedback file to receive
select distinct partner_feedback.partner
from partner_feedback
order by partner_feedback.partner
