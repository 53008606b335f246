"""The gemeente side of signal delivery: open a `signals.csv.p7m`, verify it came from the hub,
check it against its manifest, and write the plain CSV next to the message (or to `--out`).

This is what `cri-overlap open-signals` runs; a gemeente can do the same with stock `openssl cms`
(see `privacy/cms.py`). The manifest (`signals.manifest.json`, delivered next to the message)
holds no personal data: gemeente code, run date, row count, sha256 and rules version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipelines.fileio import replace_atomically, temporary_sibling
from pipelines.records import SIGNALS_MANIFEST, read_json
from privacy.cms import CmsError, decrypt, load_certificate, load_private_key, verify_with_openssl


@dataclass(frozen=True)
class OpenedSignals:
    path: Path
    gemeente: str
    run_date: str
    rows: int


def open_signal_file(
    message: Path, *, key: Path, cert: Path, ca: Path, out: Path | None = None
) -> OpenedSignals:
    """Decrypt with the gemeente's key, verify the hub's signature against the CA, check the
    sha256 and row count of the manifest next to the message, and write the CSV."""
    message = Path(message)
    manifest_path = message.with_name(SIGNALS_MANIFEST)  # the hub's name, even if renamed
    if not manifest_path.is_file():
        raise CmsError(f"{manifest_path}: the manifest delivered with the signals is missing")
    manifest = read_json(manifest_path)
    content = verify_with_openssl(
        decrypt(message.read_bytes(), load_certificate(cert), load_private_key(key)), Path(ca)
    )
    if hashlib.sha256(content).hexdigest() != manifest["sha256"]:
        raise CmsError(f"{message}: content does not match the sha256 in {manifest_path.name}")
    rows = content.count(b"\n") - 1
    if rows != manifest["row_count"]:
        raise CmsError(f"{message}: {rows} rows but the manifest says {manifest['row_count']}")
    # Plaintext goes where the gemeente put the message (its own folder), never into
    # whatever folder the command happened to be run from.
    target = (
        Path(out)
        if out
        else message.with_name(f"signals-{manifest['gemeente_code']}-{manifest['run_date']}.csv")
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target)
    temporary.write_bytes(content)
    replace_atomically(temporary, target)
    return OpenedSignals(target, manifest["gemeente_code"], manifest["run_date"], rows)
