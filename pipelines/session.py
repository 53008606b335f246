"""One DuckDB session for link, plans and signals when a night runs in one process.

Each of these stages writes its checked tables to the night's work folder, and the next stage
reads them back from there: that is how Airflow tasks (one process each) hand them over, and it
stays the only way there. When the whole night runs in one process (`cri-overlap run`), reading
back what was written a moment ago costs seconds at national scale (2,000,000 persons: the 4.2
million claims were read back twice, about 3 s a night). A `Session` keeps those tables in one
in-memory DuckDB database instead:

- a stage runs its SQL on the session's connection (`connection`);
- after writing a table that a later stage reads, it `keep`s it: the table is made to hold
  exactly the file's columns in the file's order (the rows are the ones just written), and the
  file's identity (size, modification time, inode) is noted;
- `load_linked_tables` takes a kept table instead of the file only while that file is unchanged
  since (anything else reads the file, as before);
- at the end of a stage everything the stage made but did not keep is dropped (`connection`),
  so memory holds the hand-overs, not every stage's scratch tables; `release` drops kept tables
  no later stage needs.

The contract checks are unchanged: every table is checked by its stage before it is written and
kept, so a later stage never reads anything its contract did not pass.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from pipelines.sql import connect, drop_object, keep_columns, query


def _identity(path: Path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


class Session:
    """The in-memory DuckDB database link, plans and signals share in one process."""

    def __init__(self) -> None:
        self.con = connect()
        self._kept: dict[str, tuple[Path, tuple[int, int, int]]] = {}

    def close(self) -> None:
        self.con.close()
        self._kept.clear()

    def keep(self, table: str, file: Path, columns: list[str]) -> None:
        """Keep `table` for later stages as the rows just written to `file`, whose columns are
        `columns` (in order); the table is reordered or trimmed only when it differs."""
        keep_columns(self.con, table, columns)
        self._kept[table] = (Path(file), _identity(Path(file)))

    def holds(self, table: str, file: Path) -> bool:
        """Whether `table` is kept as the current content of `file`."""
        kept = self._kept.get(table)
        if kept is None or kept[0] != Path(file):
            return False
        try:
            return kept[1] == _identity(Path(file))
        except OSError:  # removed since: memory is no longer what the file says
            return False

    def release(self, tables: Iterable[str]) -> None:
        """Drop kept tables no later stage reads."""
        for table in tables:
            if self._kept.pop(table, None) is not None:
                drop_object(self.con, "table", table)

    def tidy(self) -> None:
        """Drop what a stage left besides the kept tables: its tables, views, registered
        Python objects and attached databases."""
        leftovers = query(self.con, "session/leftovers", {"kept": sorted(self._kept)}).fetchall()
        for kind, database, schema, name in leftovers:
            drop_object(self.con, kind, name, database, schema)


@contextlib.contextmanager
def connection(session: Session | None) -> Iterator[Any]:
    """The connection a stage runs on: the session's (tidied when the stage ends, also after
    a failure) or, without a session, a fresh one closed at the end."""
    if session is None:
        with connect() as con:
            yield con
        return
    try:
        yield session.con
    except BaseException:
        # the stage's own error is the one to tell; a session DuckDB gave up on cannot be
        # tidied, and the run stops anyway
        with contextlib.suppress(duckdb.Error):
            session.tidy()
        raise
    session.tidy()
