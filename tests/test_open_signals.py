"""The gemeente side of signal files, format 2 (rules.md "Signal file, version 2"): only the
hub's signed manifest is believed, and a sealed identity opens only for the gemeente, partner and
extract date it was sealed for. Real certificates, real AES-GCM, real `openssl`.

The deliveries are built here exactly as the hub writes them (`deliver`), so these tests pin the
format the two sides share; a refusal must be one line and must write nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.gemeente import SIGNAL_COLUMNS, SignalFileRefused, open_signal_file
from privacy.cms import (
    create_demo_certificates,
    load_certificate,
    load_private_key,
    sign,
    sign_and_encrypt,
)
from privacy.sealing import (
    SealError,
    associated_data,
    new_identity_key,
    seal_identities,
    unwrap_key,
    wrap_key,
)

GM, OTHER = "GM0363", "GM0599"
RUN = "2026-11-22"
EXTRACT = "2026-11-20"
BD_KEY, CJIB_KEY = f"BD-{EXTRACT}", f"CJIB-{EXTRACT}"
ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("cri-overlap")
RECIPE = ROOT / "docs" / "open-signals-openssl.sh"
SNIPPET = ROOT / "docs" / "open_identities.py"
BSNS = {1: "111222333", 2: "123456782", 4: "999999990"}  # signal 3 has no sealed identity


@dataclass(frozen=True)
class Pki:
    """A demo CA with the hub's signing certificate (`hub/`) and the gemeenten's keys (`side/`)."""

    hub: Path
    side: Path

    @property
    def ca(self) -> Path:
        return self.side / "ca.crt"

    def creds(self, gemeente: str = GM) -> dict[str, Path]:
        """The open_signal_file arguments of one gemeente."""
        return {
            "key": self.side / f"{gemeente}.key",
            "cert": self.side / f"{gemeente}.crt",
            "ca": self.ca,
        }


@pytest.fixture(scope="module", autouse=True)
def _openssl_present() -> None:
    assert shutil.which("openssl"), "openssl is required for these tests (.ci/run installs it)"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    create_demo_certificates(root / "hub", root / "side", [GM, OTHER])
    return Pki(root / "hub", root / "side")


@pytest.fixture(scope="module")
def impostor(pki, tmp_path_factory) -> Path:
    """A signing certificate the same CA issued, but not the hub's (say, a gemeente's for its
    feedback): its signature must not pass for the hub's. Folder with hub.crt/hub.key."""
    from privacy.cms import _issue, _new_key, _write_cert, _write_key

    root = tmp_path_factory.mktemp("impostor")
    ca_key = load_private_key(pki.hub / "ca.key")
    key = _new_key()
    cert = _issue(
        "impostor", key, load_certificate(pki.hub / "ca.crt"), ca_key, ca=False, sign=True
    )
    _write_cert(cert, root / "hub.crt")
    _write_key(key, root / "hub.key")
    return root


@pytest.fixture(scope="module")
def foreign_hub(tmp_path_factory) -> Path:
    """A hub certificate under another CA: its signature must not be believed."""
    root = tmp_path_factory.mktemp("foreign")
    create_demo_certificates(root / "hub", root / "side", [])
    return root / "hub"


def seal(pki: Pki, gemeente: str, partner: str, bsns: list[str]) -> tuple[bytes, list[str]]:
    """(key file, sealed values) as a partner makes them for one gemeente (privacy.sealing)."""
    key = new_identity_key()
    wrapped = wrap_key(key, load_certificate(pki.side / f"{gemeente}.crt"))
    return wrapped, seal_identities(key, bsns, associated_data(partner, EXTRACT, gemeente))


def signal(number: int, identity_key: str = "", sealed: str = "", date: str = RUN) -> list[str]:
    """One row of a format-2 signal file."""
    return [
        f"SIG-{date.replace('-', '')}-{number:016x}",
        date,
        f"{number:032x}",
        "MULTI_ARREARS|NO_CAPACITY" if number % 2 else "MULTI_ARREARS",
        "BD|CJIB",
        str(60_000 + number),
        str(90_000 + number),
        "2026-09-01",
        "refer" if number == 3 else "standard",
        "" if number == 3 else "2500",
        "false",
        identity_key,
        sealed,
    ]


def csv_bytes(rows: list[list[str]]) -> bytes:
    lines = [";".join(SIGNAL_COLUMNS), *(";".join(row) for row in rows)]
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


def deliver(
    pki: Pki,
    folder: Path,
    rows: list[list[str]],
    key_files: dict[str, bytes],
    *,
    gemeente: str = GM,
    manifest: dict | None = None,
    manifest_bytes: bytes | None = None,
    signer: Path | None = None,
    csv_signer: Path | None = None,
) -> Path:
    """`outbox/<run_date>/<GM>/` as the hub writes it; returns the `.p7m`. `manifest` overrides
    fields, `manifest_bytes` replaces the whole file; `signer` is a folder with another
    hub.crt/hub.key to sign the manifest with."""
    folder.mkdir(parents=True, exist_ok=True)
    data = csv_bytes(rows)
    signs_csv = csv_signer or pki.hub
    hub_cert = load_certificate(signs_csv / "hub.crt")
    hub_key = load_private_key(signs_csv / "hub.key")
    recipient = load_certificate(pki.side / f"{gemeente}.crt")
    message = folder / "signals.csv.p7m"
    message.write_bytes(sign_and_encrypt(data, hub_cert, hub_key, recipient))
    document = {
        "gemeente_code": gemeente,
        "run_date": RUN,
        "file": "signals.csv",
        "row_count": len(rows),
        "sha256": hashlib.sha256(data).hexdigest(),
        "rules_version": "1",
        "format_version": 2,
        **(manifest or {}),
    }
    raw = manifest_bytes or (json.dumps(document, indent=2) + "\n").encode()
    (folder / "signals.manifest.json").write_bytes(raw)
    signer = signer or pki.hub
    signature = sign(
        raw, load_certificate(signer / "hub.crt"), load_private_key(signer / "hub.key")
    )
    (folder / "signals.manifest.json.p7s").write_bytes(signature)
    for name, content in key_files.items():
        (folder / "identity-keys").mkdir(exist_ok=True)
        (folder / "identity-keys" / f"{name}.p7m").write_bytes(content)
    return message


def good_delivery(pki: Pki, folder: Path, **options) -> Path:
    """Signals 1, 2 sealed by BD, 3 without identity, 4 sealed by CJIB, all for GM."""
    bd_file, (bd1, bd2) = seal(pki, GM, "BD", [BSNS[1], BSNS[2]])
    cjib_file, (cjib4,) = seal(pki, GM, "CJIB", [BSNS[4]])
    rows = [
        signal(1, BD_KEY, bd1),
        signal(2, BD_KEY, bd2),
        signal(3),
        signal(4, CJIB_KEY, cjib4),
    ]
    return deliver(pki, folder, rows, {BD_KEY: bd_file, CJIB_KEY: cjib_file}, **options)


def read_opened(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    return [line.split(";") for line in text[1:].splitlines()]


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def refused(pki: Pki, message: Path, match: str, gemeente: str = GM) -> str:
    """Open and expect a refusal: one line, no BSN in it, nothing written anywhere."""
    before = listing(message.parent)
    out = message.parent.parent / "opened.csv"
    with pytest.raises(SignalFileRefused, match=match) as caught:
        open_signal_file(message, out=out, **pki.creds(gemeente))
    text = str(caught.value)
    assert "\n" not in text and not any(bsn in text for bsn in BSNS.values())
    assert listing(message.parent) == before and not out.exists()
    return text


# --- opening ---------------------------------------------------------------------------------


def test_a_good_file_opens_with_the_bsns(pki, tmp_path):
    message = good_delivery(pki, tmp_path / GM)
    opened = open_signal_file(message, out=tmp_path / "opened.csv", **pki.creds())
    assert (opened.gemeente, opened.run_date, opened.rows, opened.with_identity) == (GM, RUN, 4, 3)
    rows = read_opened(opened.path)
    cut = SIGNAL_COLUMNS.index("identity_key")
    assert rows[0] == [*SIGNAL_COLUMNS[:cut], "bsn"]
    assert rows[1:] == [[*signal(n)[:cut], BSNS.get(n, "")] for n in (1, 2, 3, 4)]
    assert stat.S_IMODE(opened.path.stat().st_mode) == 0o600
    assert not [name for name in listing(tmp_path) if name.endswith(".tmp")]


def test_a_renamed_message_still_finds_the_manifest_and_writes_beside_it(pki, tmp_path):
    outbox = good_delivery(pki, tmp_path / "outbox").parent
    inbox = tmp_path / "inbox"
    shutil.copytree(outbox, inbox)
    (inbox / "signals.csv.p7m").rename(inbox / f"{GM}-{RUN}.p7m")
    opened = open_signal_file(inbox / f"{GM}-{RUN}.p7m", **pki.creds())
    assert opened.path == inbox / f"signals-{GM}-{RUN}.csv"
    assert [row[-1] for row in read_opened(opened.path)[1:]] == [BSNS[1], BSNS[2], "", BSNS[4]]


def test_a_file_without_any_identity_opens_with_an_empty_bsn_column(pki, tmp_path):
    message = deliver(pki, tmp_path / GM, [signal(3), signal(5)], {})
    opened = open_signal_file(message, out=tmp_path / "opened.csv", **pki.creds())
    assert opened.with_identity == 0
    assert [row[-1] for row in read_opened(opened.path)[1:]] == ["", ""]


# --- sealed identities: only for this gemeente, partner and date ----------------------------


def test_another_gemeentes_key_opens_nothing(pki, tmp_path):
    message = good_delivery(pki, tmp_path / GM)
    refused(pki, message, f"for {GM}, not for {OTHER}", gemeente=OTHER)
    # even when it claims to be the gemeente the file is for, the other key decrypts nothing
    with pytest.raises(SignalFileRefused, match="cannot decrypt"):
        open_signal_file(message, out=tmp_path / "x.csv", gemeente=GM, **pki.creds(OTHER))
    assert not (tmp_path / "x.csv").exists()
    other = load_certificate(pki.side / f"{OTHER}.crt"), load_private_key(pki.side / f"{OTHER}.key")
    with pytest.raises(SealError, match="does not open"):
        unwrap_key((message.parent / "identity-keys" / f"{BD_KEY}.p7m").read_bytes(), *other)


def test_a_value_moved_into_another_gemeentes_file_does_not_open(pki, tmp_path):
    """The hub (or anyone at the outbox) puts GM0599's sealed value into GM0363's file, under
    GM0363's own key for the same partner and date: the key and the associated data differ."""
    _, (theirs,) = seal(pki, OTHER, "BD", [BSNS[1]])
    ours_file, (ours,) = seal(pki, GM, "BD", [BSNS[2]])
    rows = [signal(1, BD_KEY, theirs), signal(2, BD_KEY, ours)]
    message = deliver(pki, tmp_path / GM, rows, {BD_KEY: ours_file})
    line = refused(pki, message, "tampered with, or not sealed for this gemeente")
    assert signal(1)[0] in line and signal(2)[0] not in line


def test_a_value_sealed_for_another_gemeente_does_not_open_even_under_our_key(pki, tmp_path):
    """The associated data names the gemeente of the (signed) manifest: a value sealed for
    GM0363 does not open in GM0599's file, even when its key was wrapped to GM0599."""
    key = new_identity_key()
    wrapped = wrap_key(key, load_certificate(pki.side / f"{OTHER}.crt"))
    (for_gm,) = seal_identities(key, [BSNS[1]], associated_data("BD", EXTRACT, GM))
    (for_other,) = seal_identities(key, [BSNS[2]], associated_data("BD", EXTRACT, OTHER))
    rows = [signal(2, BD_KEY, for_other), signal(1, BD_KEY, for_gm)]
    message = deliver(pki, tmp_path / OTHER, rows, {BD_KEY: wrapped}, gemeente=OTHER)
    line = refused(pki, message, f"does not open for {OTHER}", gemeente=OTHER)
    assert signal(1)[0] in line
    opened = deliver(pki, tmp_path / "ok", rows[:1], {BD_KEY: wrapped}, gemeente=OTHER)
    assert open_signal_file(opened, **pki.creds(OTHER)).with_identity == 1


def test_another_gemeentes_key_file_moved_along_does_not_open(pki, tmp_path):
    theirs_file, (theirs,) = seal(pki, OTHER, "BD", [BSNS[1]])
    message = deliver(pki, tmp_path / GM, [signal(1, BD_KEY, theirs)], {BD_KEY: theirs_file})
    line = refused(pki, message, "key file does not open")
    assert f"identity-keys/{BD_KEY}.p7m" in line


def test_a_value_moved_under_another_partners_key_does_not_open(pki, tmp_path):
    """Same key K, relabelled from BD to CJIB (key file copied under the new name): the key
    opens, but the associated data names another partner."""
    bd_file, (bd1,) = seal(pki, GM, "BD", [BSNS[1]])
    message = deliver(pki, tmp_path / GM, [signal(1, CJIB_KEY, bd1)], {CJIB_KEY: bd_file})
    refused(pki, message, f"signal {signal(1)[0]}: .*not sealed for this gemeente")
    moved = deliver(pki, tmp_path / "moved", [signal(1, f"BD-{RUN}", bd1)], {f"BD-{RUN}": bd_file})
    refused(pki, moved, "not sealed for this gemeente")  # another extract date: same


def test_a_tampered_value_is_refused_in_one_line(pki, tmp_path):
    bd_file, (bd1, bd2) = seal(pki, GM, "BD", [BSNS[1], BSNS[2]])
    rows = [signal(1, BD_KEY, bd1), signal(2, BD_KEY, flip(bd2))]
    message = deliver(pki, tmp_path / GM, rows, {BD_KEY: bd_file})
    line = refused(pki, message, "tampered with")
    assert signal(2)[0] in line and str(message) in line


def flip(sealed: str) -> str:
    """The same value with one base64 character changed inside the ciphertext."""
    return sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]


def test_a_missing_key_file_is_named(pki, tmp_path):
    _, (bd1,) = seal(pki, GM, "BD", [BSNS[1]])
    message = deliver(pki, tmp_path / GM, [signal(1, BD_KEY, bd1)], {})
    refused(pki, message, f"identity-keys/{BD_KEY}.p7m: the key file .* is missing")


def test_a_half_identity_is_refused(pki, tmp_path):
    bd_file, (bd1,) = seal(pki, GM, "BD", [BSNS[1]])
    message = deliver(pki, tmp_path / GM, [signal(1, "", bd1)], {BD_KEY: bd_file})
    refused(pki, message, "only one of identity_key and identity_sealed")


# --- the manifest: the hub's, signed, exactly ------------------------------------------------


@pytest.mark.parametrize(
    "edit", [{"run_date": "2026-11-23"}, {"gemeente_code": OTHER}, {"row_count": 3}]
)
def test_a_relabelled_manifest_is_refused(pki, tmp_path, edit):
    message = good_delivery(pki, tmp_path / GM)
    manifest = message.with_name("signals.manifest.json")
    document = json.loads(manifest.read_bytes())
    manifest.write_text(json.dumps({**document, **edit}, indent=2) + "\n")  # old .p7s kept
    refused(pki, message, "the manifest does not match its signature")


def test_an_unsigned_manifest_is_refused(pki, tmp_path):
    message = good_delivery(pki, tmp_path / GM)
    message.with_name("signals.manifest.json.p7s").unlink()
    refused(pki, message, "unsigned")


def test_a_missing_manifest_is_refused(pki, tmp_path):
    message = good_delivery(pki, tmp_path / GM)
    message.with_name("signals.manifest.json").unlink()
    refused(pki, message, "manifest delivered with the signals is missing")


def test_signatures_of_another_certificate_of_the_same_ca_are_refused(pki, impostor, tmp_path):
    """The hub's certificate is pinned (hub.crt beside ca.crt): a certificate the same CA
    issued to someone else signs neither the manifest nor the CSV of a signal file."""
    message = good_delivery(pki, tmp_path / "m" / GM, signer=impostor)
    refused(pki, message, "signature verification failed")
    message = good_delivery(pki, tmp_path / "c" / GM, csv_signer=impostor)
    refused(pki, message, "signature verification failed")


def test_a_hub_signed_file_of_another_gemeente_re_encrypted_to_us_is_refused(pki, tmp_path):
    """GM0599's signed data and genuine hub-signed manifest, encrypted to GM0363: refused
    before anything is opened, since the file is not GM0363's."""
    message = good_delivery(pki, tmp_path / GM, manifest={"gemeente_code": OTHER})
    refused(pki, message, f"for {OTHER}, not for {GM}")


def test_a_manifest_signed_outside_the_ca_is_refused(pki, foreign_hub, tmp_path):
    message = good_delivery(pki, tmp_path / GM, signer=foreign_hub)
    refused(pki, message, "signals.manifest.json.p7s: signature verification failed")


def test_a_signed_manifest_for_another_date_than_the_rows_is_refused(pki, tmp_path):
    """Signed, but the hub's own rows say another date: refuse rather than guess."""
    message = good_delivery(pki, tmp_path / GM, manifest={"run_date": "2026-11-21"})
    refused(pki, message, "signal_date 2026-11-22, but the manifest's run_date is 2026-11-21")


@pytest.mark.parametrize(
    ("manifest", "raw", "problem"),
    [
        ({"format_version": 1}, None, "format_version is not 2"),
        ({"format_version": None}, None, "format_version is not 2"),
        ({"gemeente_code": "0363"}, None, "gemeente_code is not GM"),
        ({"run_date": "22-11-2026"}, None, "run_date is not a date"),
        ({"run_date": "2026-02-30"}, None, "run_date is not a date"),
        ({"row_count": "4"}, None, "row_count is not an integer"),
        ({"row_count": -1}, None, "row_count is not an integer"),
        ({"row_count": True}, None, "row_count is not an integer"),
        ({"sha256": "00"}, None, "sha256 is not 64"),
        ({"file": "other.csv"}, None, "file is not"),
        ({"rules_version": 1}, None, "rules_version is not"),
        (None, b"[]", "not a JSON object"),
        (None, b"{not json", "not UTF-8 JSON"),
        (None, b"{}", "gemeente_code is missing"),
    ],
)
def test_a_malformed_manifest_is_refused(pki, tmp_path, manifest, raw, problem):
    message = good_delivery(pki, tmp_path / GM, manifest=manifest, manifest_bytes=raw)
    refused(pki, message, f"malformed manifest: {problem}")


def test_a_csv_that_does_not_match_the_manifest_is_refused(pki, tmp_path):
    message = good_delivery(pki, tmp_path / GM, manifest={"sha256": "0" * 64})
    refused(pki, message, "does not match the sha256")


def test_a_tampered_message_is_refused(pki, tmp_path):
    message = good_delivery(pki, tmp_path / GM)
    tamper(message)
    # a flipped bit either breaks the CBC padding or, rarely, leaves it valid and breaks the
    # signature instead: refused both ways
    refused(pki, message, "cannot decrypt: .* or damaged|signature verification failed")


def tamper(path: Path) -> None:
    """Flip one bit in the last ciphertext block of a `.p7m`."""
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))


# --- the command line ------------------------------------------------------------------------


def test_the_cli_says_how_many_signals_carry_a_bsn(pki, tmp_path):
    message = good_delivery(pki, tmp_path / GM)
    result = cli(message, pki, tmp_path / "opened.csv")
    assert result.returncode == 0, result.stderr
    assert "4 signals for GM0363 on 2026-11-22 (3 with a BSN)" in result.stdout


def test_the_cli_refuses_a_tampered_value_in_one_line(pki, tmp_path):
    bd_file, (bd1,) = seal(pki, GM, "BD", [BSNS[1]])
    message = deliver(pki, tmp_path / GM, [signal(1, BD_KEY, flip(bd1))], {BD_KEY: bd_file})
    result = cli(message, pki, tmp_path / "opened.csv")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "tampered with" in lines[0]
    assert not (tmp_path / "opened.csv").exists()


def cli(message: Path, pki: Pki, out: Path) -> subprocess.CompletedProcess:
    creds = pki.creds()
    return subprocess.run(
        [str(CLI), "open-signals", str(message), "--out", str(out)]
        + [arg for name, path in creds.items() for arg in (f"--{name}", str(path))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- the stock-openssl recipe the README quotes ----------------------------------------------


def recipe(pki: Pki, folder: Path, out: Path) -> subprocess.CompletedProcess:
    creds = pki.creds()
    return subprocess.run(
        [
            "bash",
            str(RECIPE),
            str(folder),
            *(str(creds[k]) for k in ("key", "cert", "ca")),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_openssl_recipe_and_the_python_snippet_open_a_good_file(pki, tmp_path):
    message = good_delivery(pki, tmp_path / GM)
    out = tmp_path / "out"
    result = recipe(pki, message.parent, out)
    assert result.returncode == 0, result.stderr
    assert f'"gemeente_code": "{GM}"' in result.stdout
    manifest = json.loads(message.with_name("signals.manifest.json").read_bytes())
    csv_file = out / "signals.csv"
    assert hashlib.sha256(csv_file.read_bytes()).hexdigest() == manifest["sha256"]
    assert sorted(os.listdir(out / "keys")) == [f"{BD_KEY}.bin", f"{CJIB_KEY}.bin"]
    assert stat.S_IMODE(csv_file.stat().st_mode) == 0o600
    opened = subprocess.run(
        [sys.executable, str(SNIPPET), str(csv_file), str(out / "keys"), GM],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert opened.stdout.splitlines() == [f"{signal(n)[0]};{BSNS[n]}" for n in (1, 2, 4)]
    wrong = subprocess.run(
        [sys.executable, str(SNIPPET), str(csv_file), str(out / "keys"), OTHER],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode != 0 and "InvalidTag" in wrong.stderr and not wrong.stdout


@pytest.mark.parametrize("damage", ["message", "manifest", "unsigned"])
def test_the_openssl_recipe_stops_and_writes_no_csv(pki, tmp_path, damage):
    message = good_delivery(pki, tmp_path / GM)
    manifest = message.with_name("signals.manifest.json")
    if damage == "message":
        tamper(message)
    elif damage == "manifest":
        manifest.write_bytes(manifest.read_bytes().replace(RUN.encode(), b"2026-11-23"))
    else:
        manifest.with_name("signals.manifest.json.p7s").unlink()
    out = tmp_path / "out"
    result = recipe(pki, message.parent, out)
    assert result.returncode != 0
    assert listing(out) == []  # no CSV, no keys, no work folder


def test_the_readme_quotes_the_tested_recipes_verbatim():
    """The README shows the stock-openssl recipe and the Python snippet; what it shows must be
    what these tests run, or a gemeente copies an untested variant."""
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text("utf-8")
    script = (root / "docs" / "open-signals-openssl.sh").read_text("utf-8")
    body = script[script.index("set -euo pipefail") :].strip()
    assert body in readme
    snippet = (root / "docs" / "open_identities.py").read_text("utf-8")
    assert snippet[snippet.index("import base64") :].strip() in readme
