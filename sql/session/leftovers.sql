-- grain: one row per table, view or attached database of the session that the stage that just
-- ended made and did not keep for a later one ($kept: the kept tables' names)
select
    found.object_kind,
    found.object_name
from (
    select
        'table' as object_kind,
        stage_tables.table_name as object_name
    from duckdb_tables() as stage_tables
    where stage_tables.database_name in ('memory', 'temp')
    union all
    select
        'view' as object_kind,
        stage_views.view_name as object_name
    from duckdb_views() as stage_views
    where stage_views.database_name in ('memory', 'temp') and not stage_views.internal
    union all
    select
        'database' as object_kind,
        dbs.database_name as object_name
    from duckdb_databases() as dbs
    where not dbs.internal and dbs.database_name not in ('memory', 'temp')
) as found
where not list_contains(cast($kept as varchar[]), found.object_name)
order by found.object_kind, found.object_name
