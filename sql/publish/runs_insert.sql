-- grain: one row per run date with a run.json (this statement adds one)
insert into runs values (
    $run_date,
    $started_at,
    $finished_at,
    $accepted,
    $rejected,
    $claims,
    $persons,
    $partners,
    $unchanged,
    $stale,
    $left_out,
    $signals_delivered,
    $delivery_note,
    cast($dates_removed as date[])
);
