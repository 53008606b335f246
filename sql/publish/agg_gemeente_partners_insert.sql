-- grain: one row per run date, gemeente (or ALL) and bucket (or total), after suppression
insert into agg_gemeente_partners select * from suppressed_cells;
