-- grain: one row per row of the raw extract; the BSN is checked, then replaced by its pseudonym.
-- Input: relation raw_extract(source_row, bsn, <the contract's other columns>).
-- Parameters: $hmac_ipad, $hmac_opad (privacy.hashing.hmac_sql_parameters); never key text.
-- The BSN rules mirror privacy/bsn.py exactly (property-tested): strip spaces and dots, 8 digits
-- get a leading zero, 9 digits must pass the elfproef and not be all zeros.
with stripped as (
    select
        raw_extract.*,
        regexp_replace(coalesce(raw_extract.bsn, ''), '[ .]', '', 'g') as bsn_digits
    from raw_extract
),

normalised as (
    select
        stripped.*,
        lpad(stripped.bsn_digits, 9, '0') as bsn9
    from stripped
),

checked as (
    select
        normalised.*,
        case
            when normalised.bsn_digits = '' then 'bsn_missing'
            when not regexp_full_match(normalised.bsn_digits, '[0-9]{8,9}')
                then 'bsn_not_8_or_9_digits'
            when normalised.bsn9 = '000000000' then 'bsn_all_zeros'
            when (
                9 * (ascii(substr(normalised.bsn9, 1, 1)) - 48)
                + 8 * (ascii(substr(normalised.bsn9, 2, 1)) - 48)
                + 7 * (ascii(substr(normalised.bsn9, 3, 1)) - 48)
                + 6 * (ascii(substr(normalised.bsn9, 4, 1)) - 48)
                + 5 * (ascii(substr(normalised.bsn9, 5, 1)) - 48)
                + 4 * (ascii(substr(normalised.bsn9, 6, 1)) - 48)
                + 3 * (ascii(substr(normalised.bsn9, 7, 1)) - 48)
                + 2 * (ascii(substr(normalised.bsn9, 8, 1)) - 48)
                - (ascii(substr(normalised.bsn9, 9, 1)) - 48)
            ) % 11 != 0 then 'bsn_fails_elfproef'
        end as rejection_reason
    from normalised
)

select
    -- the partner's own columns pass through unchanged (the contract names them)
    checked.* exclude (rejection_reason, bsn, bsn_digits, bsn9), -- noqa: RF03
    checked.rejection_reason,
    case
        when checked.rejection_reason is null
            then sha256($hmac_opad || unhex(sha256($hmac_ipad || encode(checked.bsn9))))
    end as person_pseudonym
from checked
