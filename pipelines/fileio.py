"""Small file helpers shared by every stage: atomic writes and content hashes.

Everything the pipeline publishes is written under a temporary name in the same folder and then
renamed, so a reader or a crash sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, streamed so national-scale files cost no memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def temporary_sibling(path: Path) -> Path:
    """A temporary name next to `path` (same filesystem, so the final rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def replace_atomically(temporary: Path, final: Path, *, flush: bool = True) -> Path:
    """Move a finished temporary file into place in one step, flushing it to disk first.

    `flush=False` is for files of a work folder that is put in place whole (a night's outbox
    of hundreds of gemeente folders): its builder calls `flush_folder` once before the swap
    instead of one fsync per file as it goes (about 1.3 ms each)."""
    if flush:
        with Path(temporary).open("rb") as handle:
            os.fsync(handle.fileno())
    os.replace(temporary, final)
    return Path(final)


def flush_folder(folder: Path) -> None:
    """Put a folder written with `flush=False` on disk before it is swapped in: one `sync(2)`
    writes everything out at once, then an fsync per file and folder, now cheap, reports what
    `sync` cannot: a write that failed (a full disk, an I/O error) raises here, before the swap."""
    os.sync()
    for path in sorted(Path(folder).rglob("*"), reverse=True):  # files before their folders
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_json_atomically(path: Path, document: object, *, flush: bool = True) -> Path:
    """Write JSON (UTF-8, indented, trailing newline) atomically (`flush`: see
    `replace_atomically`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return replace_atomically(temporary, path, flush=flush)
