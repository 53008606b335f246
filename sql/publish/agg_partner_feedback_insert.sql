-- grain: one row per partner, month and measure cell after suppression
insert into agg_partner_feedback by name select * from suppressed_rows;
