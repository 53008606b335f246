-- grain: as the linked table read: its rows of every linked run date, one Parquet file each
select * from read_parquet($linked_files)
