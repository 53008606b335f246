-- grain: one row per quarantined delivery (one reason.json; this statement adds one)
insert into rejections values (
    $run_date,
    $partner,
    $dataset,
    $received,
    $rule,
    $message,
    $rows,
    $lines,
    $folder
);
