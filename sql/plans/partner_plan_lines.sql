-- grain: one row per plan line of one partner's claims: what that partner's export file holds
select
    partner_export.claim_ref,
    partner_export.plan_outcome,
    partner_export.monthly_cents,
    partner_export.term_months
from partner_export
where partner_export.partner = $partner
order by partner_export.claim_ref
