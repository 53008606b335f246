-- grain: one row per partner of partner_feedback (as of the newest run date), summed over the
-- months of signal_date: the signals in which the partner qualified, how many of them were
-- picked up or not picked up, and the picked-up share in percent (one decimal, half away from
-- zero; null without signals)
select
    feedback.partner,
    sum(feedback.signals) as signals,
    sum(feedback.picked_up) as picked_up,
    sum(feedback.not_picked_up) as not_picked_up,
    round(100 * sum(feedback.picked_up) / nullif(sum(feedback.signals), 0), 1) as picked_up_percent
from partner_feedback as feedback
group by feedback.partner
order by feedback.partner
