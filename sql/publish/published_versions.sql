-- grain: one row per version of a run date that the snapshot names
select
    publications.run_date,
    publications.folder
from publications
