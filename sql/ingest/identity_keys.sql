-- grain: one row per gemeente with a key file listed in the manifest (`identity_keys`; empty for
-- datasets other than identities), for the identities contract rule gemeente_has_key_file.
-- Parameters: $gemeenten (list of codes).
create or replace table delivery_identity_keys as
select unnest(cast($gemeenten as varchar[])) as gemeente_code;
