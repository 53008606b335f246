-- grain: as sql/publish/partner_feedback.sql: the counts computed apart, into the snapshot's table
insert into partner_feedback by name select * from counted;
