-- grain: one row per partner of the policy file's signal thresholds (signals.thresholds)
select * from threshold_rows
