-- grain: none; session settings for batch work (no progress bar: workers would print it).
set enable_progress_bar = false;
