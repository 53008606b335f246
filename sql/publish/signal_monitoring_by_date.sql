-- grain: one row per run date and gemeente (the published signal monitoring), in that order
select * from signal_monitoring
order by run_date, gemeente_code
