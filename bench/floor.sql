-- The floor for the benchmark: one hand-written DuckDB script doing only the core computation
-- of a night (link, overlap, plans, signals) straight from the landing CSVs, with no validation,
-- no hub-key hashing, no history, no publishing. Parameters: $claims (list of CSV paths),
-- $income (CSV path), $run_date.
create temp table c as
select *
from read_csv($claims, delim = ';', header = true, union_by_name = true, filename = true);

create temp table per_partner as
select
    c.person_pseudonym,
    split_part(c.filename, '/', -2) as partner,
    sum(c.arrears_cents) as arrears_cents,
    sum(c.outstanding_cents) as outstanding_cents,
    min(c.arrears_since) as oldest
from c
group by all;

create temp table persons as
select
    person_pseudonym,
    count(*) filter (where arrears_cents > 0) as n_partners,
    sum(outstanding_cents) as total_cents,
    sum(arrears_cents) as arrears_cents
from per_partner
group by all;

create temp table overlap_counts as
select
    n_partners,
    count(*) as persons
from persons
group by all;

create temp table overlap_pairs as
select
    a.partner as partner_a,
    b.partner as partner_b,
    count(*) as persons
from per_partner as a
inner join per_partner as b
    on a.person_pseudonym = b.person_pseudonym and a.partner < b.partner
where a.arrears_cents > 0 and b.arrears_cents > 0
group by all;

create temp table plans as
select
    p.person_pseudonym,
    p.total_cents,
    i.net_income_cents,
    greatest(0, i.net_income_cents - 130060) as capacity,
    case
        when p.total_cents <= 12000 then 3 when p.total_cents <= 30000 then 6
        when p.total_cents <= 45000 then 9 when p.total_cents <= 125000 then 12
        when p.total_cents <= 200000 then 18 when p.total_cents <= 300000 then 24
        when p.total_cents <= 400000 then 30 else 36
    end as term
from persons as p
left join read_csv($income, delim = ';', header = true) as i
    on p.person_pseudonym = i.person_pseudonym
where p.n_partners >= 2;

create temp table plan_lines as
select
    c.person_pseudonym,
    c.claim_ref,
    (p.total_cents + p.term - 1) // p.term * c.outstanding_cents // p.total_cents as monthly
from c
inner join plans as p on c.person_pseudonym = p.person_pseudonym;

create temp table signals as
select
    person_pseudonym,
    count(*) as qualifying
from per_partner
where
    arrears_cents >= 10000 and date_diff('day', oldest, cast($run_date as date)) >= 30
group by all
having count(*) >= 2;
