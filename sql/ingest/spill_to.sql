-- grain: none; where an in-memory work database spills when memory runs short (the call's own
-- work folder, removed afterwards). Parameters: $temp_directory.
set temp_directory = $temp_directory;
