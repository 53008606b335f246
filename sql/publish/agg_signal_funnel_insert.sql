-- grain: one row per gemeente (or ALL), month and measure cell after suppression
insert into agg_signal_funnel by name select * from suppressed_rows;
