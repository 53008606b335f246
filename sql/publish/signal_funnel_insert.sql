-- grain: as sql/publish/signal_funnel.sql: the counts computed apart, into the snapshot's table
insert into signal_funnel by name select * from counted;
