-- grain: one row per run date, gemeente (or ALL) and measure, after suppression
insert into agg_signal_monitoring select * from monitoring_rows;
