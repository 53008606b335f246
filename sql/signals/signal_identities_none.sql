-- grain: none (no partner delivered identities within the carry-forward window): the empty
-- `signal_identities`, with the columns of signal_identities.sql.
select
    cast(null as varchar) as signal_id,
    cast(null as varchar) as identity_key,
    cast(null as varchar) as identity_sealed,
    cast(null as varchar) as identity_file
where false
