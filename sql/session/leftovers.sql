-- grain: one row per table, view or attached database of the session that the stage that just
-- ended made and did not keep for a later one ($kept: the kept tables' names; only a table of
-- memory.main is kept: an object of that name anywhere else would shadow it, so it goes)
select
    found.object_kind,
    found.database_name,
    found.schema_name,
    found.object_name
from (
    select
        'table' as object_kind,
        stage_tables.database_name,
        stage_tables.schema_name,
        stage_tables.table_name as object_name
    from duckdb_tables() as stage_tables
    where not stage_tables.internal
    union all
    select
        'view' as object_kind,
        stage_views.database_name,
        stage_views.schema_name,
        stage_views.view_name as object_name
    from duckdb_views() as stage_views
    where not stage_views.internal
    union all
    select
        'database' as object_kind,
        dbs.database_name,
        null as schema_name,
        dbs.database_name as object_name
    from duckdb_databases() as dbs
    where not dbs.internal and dbs.database_name not in ('memory', 'temp')
) as found
where
    not (
        found.object_kind = 'table'
        and found.database_name = 'memory'
        and found.schema_name = 'main'
        and list_contains(cast($kept as varchar[]), found.object_name)
    )
    and (found.object_kind = 'database' or found.database_name in ('memory', 'temp'))
order by
    found.object_kind desc,
    found.database_name asc,
    found.schema_name asc,
    found.object_name asc
