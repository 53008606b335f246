-- grain: one row: the number of data rows of the delivery.
select count(*) as data_rows
from delivery_text
