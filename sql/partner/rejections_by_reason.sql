-- grain: one row per rejection reason that occurs in the raw extract, in reason order
select
    pseudonymised.rejection_reason,
    count(*) as rows_rejected
from pseudonymised
where pseudonymised.rejection_reason is not null
group by pseudonymised.rejection_reason
order by pseudonymised.rejection_reason
