-- grain: one row per month of signal_date: what one partner learns of the signals in which
-- it qualified (counts only: never a reason or a result, interfaces.md section 6)
select -- noqa: ST06
    strftime(partner_feedback.month, '%Y-%m') as month,  -- noqa: RF04
    partner_feedback.signals,
    partner_feedback.picked_up,
    partner_feedback.not_picked_up
from partner_feedback
where partner_feedback.partner = $partner
order by partner_feedback.month
