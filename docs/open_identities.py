"""Open the sealed identities of a signal file (format 2) with keys stock openssl unwrapped.

usage: python3 open_identities.py OUT_DIR/signals.csv OUT_DIR/keys GMxxxx > bsn.csv
prints `signal_id;bsn` for each signal with a sealed identity; stops (InvalidTag) on a value that
was tampered with or not sealed for this gemeente. GMxxxx is your own code (the manifest's).
"""

import base64
import csv
import sys
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

signals, keys, gemeente = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
with signals.open(encoding="utf-8-sig", newline="") as handle:
    for row in csv.DictReader(handle, delimiter=";"):
        if row["identity_key"]:
            partner, _, day = row["identity_key"].partition("-")
            key = (keys / f"{row['identity_key']}.bin").read_bytes()
            raw = base64.b64decode(row["identity_sealed"], validate=True)
            aad = f"{partner}|{day}|{gemeente}".encode("ascii")
            bsn = AESGCM(key).decrypt(raw[:12], raw[12:], aad).decode("ascii")
            print(f"{row['signal_id']};{bsn}")
