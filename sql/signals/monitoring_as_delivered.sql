-- grain: one row per gemeente of the night's monitoring, with_identity as delivered (a
-- gemeente without a signal file has none of its signals with an identity)
select
    made.* replace (
        coalesce(identity_counts.with_identity, 0) as with_identity
    )
from made
left join identity_counts on made.gemeente_code = identity_counts.gemeente_code
order by made.gemeente_code
