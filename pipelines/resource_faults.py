"""Resource faults of the machine, told as one line a person can act on.

A full disk, a file-size or open-file limit, a permission, memory: these are not bugs of the
pipeline and not faults of the data, so the CLI ends them with one line saying what happened
and what to do (exit 1), never a traceback. The OS error may be an `OSError`, or only text in
an exception of polars (Rust) or DuckDB, or the cause of a stage's own error; `describe` looks
through all of them. Imports are done at module load: with no file descriptors or memory left,
the handler cannot import.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import sys
from pathlib import Path

from pipelines.settings import MEMORY_LIMIT_ENV


def one_line(text: object) -> str:
    """Any text on one line (a message may carry newlines from a library)."""
    return " ".join(str(text).split())


def _first_line(exc: BaseException, limit: int = 160) -> str:
    """DuckDB's own first line, short: the rest can quote data, which stays off stderr."""
    lines = str(exc).strip().splitlines()
    text = one_line(lines[0]) if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _os_error_in_text(exc: BaseException) -> OSError | None:
    """The OS error an exception reports only in its text: polars (Rust) says `... (os error
    27)` with no errno, or panics with `Os { code: 24, ... }`; DuckDB says `"errno":"28"` or
    just the strerror, and names the file in quotes; a lazy import of an extension module
    quotes dlopen's strerror."""
    text = str(exc)
    found = re.search(r"\(os error (\d+)\)|Os \{ code: (\d+)|\"errno\":\s*\"?(\d+)", text)
    if found is not None:
        code = int(next(group for group in found.groups() if group))
    else:
        codes = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EMFILE, errno.ENFILE)
        codes += (errno.EACCES, errno.EROFS, errno.ENOMEM)
        code = next((c for c in codes if os.strerror(c) in text), None)
        if code is None:
            return None
    named = re.search(r'file \\?"(.+?)\\?"', text)
    return OSError(code, os.strerror(code), named.group(1) if named else None)


OUT_OF_MEMORY = (
    "out of memory: close other programs, raise the memory limit (ulimit -v) or use fewer "
    "--workers, and run again"
)


def _os_fault(exc: OSError) -> str | None:
    """The line for an OSError that is a resource fault, or None (then it is a bug)."""
    name = exc.filename
    name = os.fsdecode(name) if isinstance(name, str | bytes) else None
    file = name or "a file"
    folder = str(Path(name).parent) if name else "the output folder"
    again = "and run again"
    if exc.errno == errno.ENOMEM:
        return OUT_OF_MEMORY
    if exc.errno == errno.ENOSPC:
        return (
            f"no space left on device while writing {file}: free space on the disk that "
            f"holds {folder} {again}"
        )
    if exc.errno == errno.EDQUOT:
        return (
            f"disk quota exceeded while writing {file}: free space or raise the quota for "
            f"{folder} {again}"
        )
    if exc.errno == errno.EFBIG:
        return (
            f"file too large while writing {file}: the file size limit (ulimit -f) or the "
            f"file system's maximum was reached; raise the limit or write elsewhere {again}"
        )
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        scope = "this process" if exc.errno == errno.EMFILE else "the system"
        return (
            f"too many open files in {scope} while opening {file}: raise the limit "
            f"(ulimit -n, now {limit}) or use fewer --workers {again}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied on {file}: give this user access to it or choose another "
            f"path, {again}"
        )
    if exc.errno == errno.EROFS:
        return f"read-only file system at {file}: choose a writable folder {again}"
    if exc.errno == errno.ENOTDIR:
        return f"not a folder: a part of the path {file} is a file; choose another path {again}"
    if exc.errno == errno.EISDIR:
        return f"{file} is a folder where a file is needed: choose another path {again}"
    if exc.errno == errno.EEXIST:
        return (
            f"{file} already exists where a new file or folder is needed: choose another "
            f"path or move it away on purpose, {again}"
        )
    return None


def describe(exc: BaseException | None) -> str | None:
    """The line for a resource fault (here or in what it was raised from), or None."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError):
            line = _os_fault(exc if exc.errno is not None else _os_error_in_text(exc) or exc)
            if line:
                return line
        if isinstance(exc, MemoryError):
            return OUT_OF_MEMORY
        if isinstance(exc, ImportError) or type(exc).__name__ == "PanicException":
            found = _os_error_in_text(exc)
            if found is not None and (line := _os_fault(found)):
                return line
        duckdb = sys.modules.get("duckdb")  # never imported here: it raised, so it is loaded
        if duckdb is not None and isinstance(exc, duckdb.OutOfMemoryException):
            setting = os.environ.get(MEMORY_LIMIT_ENV)
            raise_it = f"raise {MEMORY_LIMIT_ENV} (now {setting})" if setting else "add memory"
            return (
                f"DuckDB ran out of memory ({_first_line(exc)}): {raise_it} or use fewer "
                "--workers, and run again"
            )
        if duckdb is not None and isinstance(exc, duckdb.IOException):
            found = _os_error_in_text(exc)
            if found is not None and (line := _os_fault(found)):
                return line
            return (
                f"DuckDB could not read or write a file ({_first_line(exc)}): check free "
                "space, limits and permissions there, and run again"
            )
        if duckdb is not None and isinstance(
            exc, duckdb.TransactionException | duckdb.FatalException
        ):
            # A commit or checkpoint whose write failed: only the OS error counts here.
            found = _os_error_in_text(exc)
            if found is not None and (line := _os_fault(found)):
                return line
        exc, seen = exc.__cause__, seen + 1
    return None
