-- grain: one row: the number of months in one partner's feedback file
select count(*) as months
from partner_feedback
where partner_feedback.partner = $partner
