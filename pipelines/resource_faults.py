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


# errno -> the line for it; `{file}`, `{folder}`, `{again}` filled in by `_os_fault`.
_OS_FAULTS: dict[int, str] = {
    errno.ENOSPC: "no space left on device while writing {file}: free space on the disk that "
    "holds {folder} {again}",
    errno.EDQUOT: "disk quota exceeded while writing {file}: free space or raise the quota for "
    "{folder} {again}",
    errno.EFBIG: "file too large while writing {file}: the file size limit (ulimit -f) or the "
    "file system's maximum was reached; raise the limit or write elsewhere {again}",
    errno.EMFILE: "too many open files in this process while opening {file}: raise the limit "
    "(ulimit -n, now {limit}) or use fewer --workers {again}",
    errno.ENFILE: "too many open files in the system while opening {file}: raise the limit "
    "(ulimit -n, now {limit}) or use fewer --workers {again}",
    errno.EACCES: "permission denied on {file}: give this user access to it or choose another "
    "path, {again}",
    errno.EPERM: "permission denied on {file}: give this user access to it or choose another "
    "path, {again}",
    errno.EROFS: "read-only file system at {file}: choose a writable folder {again}",
    errno.ENOTDIR: "not a folder: a part of the path {file} is a file; choose another path {again}",
    errno.EISDIR: "{file} is a folder where a file is needed: choose another path {again}",
    errno.EEXIST: "{file} already exists where a new file or folder is needed: choose another "
    "path or move it away on purpose, {again}",
}


def _os_fault(exc: OSError) -> str | None:
    """The line for an OSError that is a resource fault, or None (then it is a bug)."""
    if exc.errno == errno.ENOMEM:
        return OUT_OF_MEMORY
    template = _OS_FAULTS.get(exc.errno) if exc.errno is not None else None
    if template is None:
        return None
    name = exc.filename
    name = os.fsdecode(name) if isinstance(name, str | bytes) else None
    return template.format(
        file=name or "a file",
        folder=str(Path(name).parent) if name else "the output folder",
        again="and run again",
        limit=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    )


def describe(exc: BaseException | None) -> str | None:
    """The line for a resource fault (here or in what it was raised from), or None."""
    seen = 0
    while exc is not None and seen < 10:
        line = _describe_one(exc)
        if line:
            return line
        exc, seen = exc.__cause__, seen + 1
    return None


def _found_in_text(exc: BaseException) -> str | None:
    """The line for an OS error named only in an exception's text (DuckDB, Rust panics)."""
    found = _os_error_in_text(exc)
    return _os_fault(found) if found is not None else None


def _describe_one(exc: BaseException) -> str | None:
    if isinstance(exc, OSError):
        return _os_fault(exc if exc.errno is not None else _os_error_in_text(exc) or exc)
    if isinstance(exc, MemoryError):
        return OUT_OF_MEMORY
    if isinstance(exc, ImportError) or type(exc).__name__ == "PanicException":
        return _found_in_text(exc)
    duckdb = sys.modules.get("duckdb")  # never imported here: it raised, so it is loaded
    if duckdb is None:
        return None
    if isinstance(exc, duckdb.OutOfMemoryException):
        setting = os.environ.get(MEMORY_LIMIT_ENV)
        raise_it = f"raise {MEMORY_LIMIT_ENV} (now {setting})" if setting else "add memory"
        return (
            f"DuckDB ran out of memory ({_first_line(exc)}): {raise_it} or use fewer "
            "--workers, and run again"
        )
    if isinstance(exc, duckdb.IOException):
        return _found_in_text(exc) or (
            f"DuckDB could not read or write a file ({_first_line(exc)}): check free "
            "space, limits and permissions there, and run again"
        )
    if isinstance(exc, duckdb.TransactionException | duckdb.FatalException):
        # A commit or checkpoint whose write failed: only the OS error counts here.
        return _found_in_text(exc)
    return None
