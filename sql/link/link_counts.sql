-- grain: one row for the run: its claims, persons and persons at two or more partners
select
    (select count(*) from claims) as claims,
    (select count(*) from persons) as persons,
    (
        select count(*)
        from persons
        where persons.n_partners >= 2
    ) as persons_multi
