-- grain: one row per row of the raw extract; the BSN is checked, then replaced by its pseudonym.
-- Input: relation raw_extract(source_row, <the contract's columns, bsn in place of
-- person_pseudonym>). The result keeps that order, so person_pseudonym sits where the contract
-- puts it, followed by rejection_reason.
-- Needs: sql/privacy/bsn_macros.sql. Parameters: $hmac_ipad, $hmac_opad
-- (privacy.hashing.hmac_sql_parameters), so no key text ever appears in the query.
with checked as (
    select
        raw_extract.*,
        bsn_rejection_reason(raw_extract.bsn) as rejection_reason,
        lpad(bsn_strip(raw_extract.bsn), 9, '0') as bsn9
    from raw_extract
),

hashed as (
    select
        -- the partner's own columns pass through unchanged (the contract names them)
        checked.* exclude (bsn9) replace ( -- noqa: RF03
            case
                when checked.rejection_reason is null
                    then sha256($hmac_opad || unhex(sha256($hmac_ipad || encode(checked.bsn9))))
            end as bsn
        )
    from checked
)

select hashed.* rename (bsn as person_pseudonym) -- noqa: RF03
from hashed
