-- grain: one row per pair of partners (partner_a < partner_b) in the run
with in_arrears as (
    select
        persons.person_id,
        unnest(persons.partners) as partner
    from persons
),

pairs as (
    select
        first_partner.partner as partner_a,
        second_partner.partner as partner_b
    from ref_partners as first_partner
    inner join ref_partners as second_partner
        on first_partner.partner < second_partner.partner
),

persons_at_both as (
    select
        first_partner.partner as partner_a,
        second_partner.partner as partner_b,
        count(*) as persons
    from in_arrears as first_partner
    inner join in_arrears as second_partner
        on
            first_partner.person_id = second_partner.person_id
            and first_partner.partner < second_partner.partner
    group by first_partner.partner, second_partner.partner
)

select
    pairs.partner_a,
    pairs.partner_b,
    cast($run_date as date) as run_date,
    coalesce(persons_at_both.persons, 0) as persons
from pairs
left join persons_at_both
    on
        pairs.partner_a = persons_at_both.partner_a
        and pairs.partner_b = persons_at_both.partner_b
order by pairs.partner_a, pairs.partner_b
