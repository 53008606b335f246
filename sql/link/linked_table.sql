-- grain: as the linked table read: the rows of one `linked/<date>/<table>.parquet` file
select * from read_parquet($linked_file)
