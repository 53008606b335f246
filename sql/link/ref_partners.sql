-- grain: one row per partner of the reference list (reference/partners.csv)
select partners.partner
from read_csv($partners_csv, header = true, all_varchar = true) as partners
