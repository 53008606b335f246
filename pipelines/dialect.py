"""The CSV dialect every exchanged file uses (`interfaces.md` section 3), in one place.

UTF-8 (a BOM is allowed on input), header row, `;` separator, `"` quoting, empty field = null,
dates YYYY-MM-DD, booleans true/false, money as integer cents.
"""

from __future__ import annotations

SEPARATOR = ";"
QUOTE = '"'
DATE_FORMAT = "%Y-%m-%d"
TRUE, FALSE = "true", "false"

# DuckDB COPY options that write the dialect.
DUCKDB_COPY_CSV = f"(format csv, header true, delimiter '{SEPARATOR}', quote '{QUOTE}')"
