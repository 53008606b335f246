-- grain: one row per published version of a run date (oldest version first)
-- ("version" and "tables" are the contract's column names)
select
    cast(publication_rows.run_date as date) as run_date,
    cast(publication_rows.version as integer) as version,  -- noqa: RF04
    cast(publication_rows.published_at as timestamp) as published_at,
    cast(publication_rows.published_by as date) as published_by,
    cast(publication_rows.superseded_at as timestamp) as superseded_at,
    cast(publication_rows.tables as varchar[]) as tables,  -- noqa: RF04
    cast(publication_rows.folder as varchar) as folder
from publication_rows
order by publication_rows.run_date, publication_rows.version
