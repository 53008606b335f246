"""Key files: the only way key material enters the program.

A key file is JSON (`interfaces.md` section 2): key_id, purpose (`linkage` for partners, `hub` for
the hub's own secret), created, and the secret as base64 of 32 random bytes. Files are created
with mode 0600 and never overwritten; loading refuses a file that group or others may access, as
ssh does for a private key. The loaded secret is kept out of `repr`, so it cannot end up in a log
line or a traceback by accident.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

PURPOSES = ("linkage", "hub")
SECRET_BYTES = 32
_KEY_ID_PREFIX = {"linkage": "link", "hub": "hub"}
# Any permission for group or others (ssh's test for private keys).
_GROUP_OTHER_BITS = stat.S_IRWXG | stat.S_IRWXO


class KeyFileError(Exception):
    """A key file is missing, unreadable, too open, malformed or meant for another purpose."""


@dataclass(frozen=True)
class KeyMaterial:
    """A loaded key. `secret` is excluded from repr and comparisons print no bytes."""

    key_id: str
    purpose: str
    created: dt.date
    secret: bytes = field(repr=False)


def new_key(purpose: str, *, created: dt.date | None = None) -> KeyMaterial:
    """Create fresh key material from the OS CSPRNG."""
    if purpose not in PURPOSES:
        raise KeyFileError(f"unknown key purpose {purpose!r}: use one of {', '.join(PURPOSES)}")
    created = created or dt.date.today()
    key_id = f"{_KEY_ID_PREFIX[purpose]}-{created:%Y}-{secrets.token_hex(3)}"
    return KeyMaterial(key_id, purpose, created, secrets.token_bytes(SECRET_BYTES))


def write_key_file(key: KeyMaterial, path: Path) -> Path:
    """Write `key` to a new file with mode 0600. Refuses to overwrite: a lost key breaks linkage."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "key_id": key.key_id,
        "purpose": key.purpose,
        "created": key.created.isoformat(),
        "secret": base64.b64encode(key.secret).decode("ascii"),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path}: a key file already exists there; choose another --out or remove it on purpose"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())  # a disk-full error shows here, not after we said "wrote"
    except BaseException as exc:
        # We created it (O_EXCL): an empty or partial key file would block the next attempt.
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            # A failed buffered write names no file; name it (same errno, same subclass).
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    return path


def _read_private_file(path: Path) -> str:
    """The text of `path`, refused (as ssh refuses a private key) if group or others may access it.

    The mode is taken with fstat on the descriptor that is then read, so the file checked is the
    file read. Symlinks are followed: only the mode of the file itself counts.
    """
    # O_NONBLOCK: a FIFO in place of the key file must not hang the open; reads are unaffected.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise KeyFileError(f"{path}: not a regular file; a key file must be a plain file")
        mode = stat.S_IMODE(status.st_mode)
        if os.name == "posix" and mode & _GROUP_OTHER_BITS:
            raise KeyFileError(
                f"{path}: key file mode is {mode:04o}, so group or others can access the secret; "
                f"run `chmod 600 {path}`"
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read().decode("utf-8")
    finally:
        os.close(fd)


def load_key_file(path: Path | str, purpose: str) -> KeyMaterial:
    """Load and check a key file for `purpose`. Errors name the file and the remedy, never bytes."""
    path = Path(path)
    try:
        document = json.loads(_read_private_file(path))
    except FileNotFoundError:
        raise KeyFileError(
            f"{path}: key file not found; create one with "
            f"`cri-overlap keys new --purpose {purpose}`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"{path}: not a readable JSON key file ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise KeyFileError(f"{path}: a key file must be a JSON object")
    missing = [k for k in ("key_id", "purpose", "created", "secret") if k not in document]
    if missing:
        raise KeyFileError(f"{path}: key file lacks {', '.join(missing)}")
    if document["purpose"] != purpose:
        raise KeyFileError(
            f"{path}: key purpose is {document['purpose']!r} but {purpose!r} is needed here; "
            "use the right key file (linkage keys belong to partners, hub keys to the hub)"
        )
    key_id = document["key_id"]
    if not isinstance(key_id, str) or not key_id or len(key_id) > 64:
        raise KeyFileError(f"{path}: key_id must be a short non-empty string")
    try:
        created = dt.date.fromisoformat(document["created"])
    except (TypeError, ValueError):
        raise KeyFileError(f"{path}: created must be a date YYYY-MM-DD") from None
    try:
        secret = base64.b64decode(document["secret"], validate=True)
    except (TypeError, ValueError, binascii.Error):
        raise KeyFileError(f"{path}: secret is not valid base64") from None
    if len(secret) != SECRET_BYTES:
        raise KeyFileError(f"{path}: secret must be {SECRET_BYTES} bytes, found {len(secret)}")
    return KeyMaterial(key_id, purpose, created, secret)
