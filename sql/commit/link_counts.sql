-- grain: one row: the claims, persons and partners of one linked date (for its run record)
select
    (select count(*) from read_parquet($claims)) as claims,
    (select count(*) from read_parquet($persons)) as persons,
    (
        select coalesce(list(distinct partner order by partner), [])
        from read_parquet($claims)
    ) as partners
