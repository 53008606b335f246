-- grain: none (macros). The BSN rules of privacy/bsn.py in SQL, property-tested against it:
-- strip spaces and dots; 8 digits get a leading zero; 9 digits must pass the elfproef and not be
-- all zeros. Used by the partner tool (rejects) and by the hub's raw-BSN leak guard.
create or replace macro bsn_strip(raw) as regexp_replace(coalesce(raw, ''), '[ .]', '', 'g');

create or replace macro bsn_elfproef_sum(bsn9) as (
    9 * (ascii(substr(bsn9, 1, 1)) - 48)
    + 8 * (ascii(substr(bsn9, 2, 1)) - 48)
    + 7 * (ascii(substr(bsn9, 3, 1)) - 48)
    + 6 * (ascii(substr(bsn9, 4, 1)) - 48)
    + 5 * (ascii(substr(bsn9, 5, 1)) - 48)
    + 4 * (ascii(substr(bsn9, 6, 1)) - 48)
    + 3 * (ascii(substr(bsn9, 7, 1)) - 48)
    + 2 * (ascii(substr(bsn9, 8, 1)) - 48)
    - (ascii(substr(bsn9, 9, 1)) - 48)
);

create or replace macro bsn_rejection_reason(raw) as (
    case
        when bsn_strip(raw) = '' then 'bsn_missing'
        when not regexp_full_match(bsn_strip(raw), '[0-9]{8,9}') then 'bsn_not_8_or_9_digits'
        when lpad(bsn_strip(raw), 9, '0') = '000000000' then 'bsn_all_zeros'
        when bsn_elfproef_sum(lpad(bsn_strip(raw), 9, '0')) % 11 != 0 then 'bsn_fails_elfproef'
    end
);

create or replace macro looks_like_raw_bsn(text_value) as (
    -- The first tests are cheap and exact (only 9 or more digits, spaces and dots can strip to
    -- 9 digits, so at least 9 bytes, the first one of those); CASE evaluates each next test,
    -- and the costly branch, only for the few rows that pass the ones before.
    case
        when text_value is null or strlen(text_value) < 9 then false
        when not (ascii(text_value) between 48 and 57 or ascii(text_value) in (32, 46))
            then false
        when not regexp_full_match(text_value, '[0-9 .]{9,}') then false
        else
            regexp_full_match(bsn_strip(text_value), '[0-9]{9}')
            and bsn_strip(text_value) != '000000000'
            and bsn_elfproef_sum(bsn_strip(text_value)) % 11 = 0
    end
);
