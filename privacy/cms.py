"""CMS (S/MIME) delivery of signal files: signed by the hub, encrypted to one gemeente.

The message is `EnvelopedData(SignedData(file))` in DER, as `cryptography`'s pkcs7 builders make
it (hub certificate, SHA-256, binary content); the manifest beside it is signed too
(`signals.manifest.json.p7s`, SignedData with the content attached). A gemeente opens both with
stock OpenSSL in separate, checked steps (`docs/open-signals-openssl.sh`; never as a pipe, whose
first step can fail while the second still writes a file).

Gemeenten sign the other way: a feedback file is SignedData (content attached) made with the
gemeente's key, and the hub checks it against that gemeente's own certificate only
(`verify_signed_by`), so a gemeente certificate allows both encryption and signing.

`cryptography` can decrypt but has no CMS signature verification, so `open_signed_file` decrypts in
Python and verifies with the `openssl` command. `create_demo_certificates` makes a throw-away CA,
a hub certificate and one certificate per gemeente for demos and tests; real deployments bring
their own PKI. Private keys are written with mode 0600 and never logged.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_BITS = 2048
VALID_DAYS = 730


class CmsError(Exception):
    """A message cannot be made, opened or verified; the text says why, never key bytes."""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cri-overlap demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey | None,
    *,
    ca: bool,
    sign: bool,
    encrypt: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    # A CA only signs certificates; the hub signs messages (and commits to their content); a
    # gemeente receives encrypted keys and signs its feedback files, so it needs both usages:
    # `openssl cms -verify` refuses a signer whose key usage lacks digitalSignature.
    signs = sign and not ca
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=signs,
            content_commitment=signs and not encrypt,
            key_encipherment=encrypt,
            data_encipherment=encrypt,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def create_demo_certificates(
    hub_dir: Path,
    gemeente_dir: Path,
    gemeenten: Iterable[str],
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """A demo CA, the hub's signing certificate and one certificate per gemeente, which it
    uses to receive (key encipherment) and to sign its feedback (digital signature).

    Hub side (`hub_dir`): ca.crt, ca.key, hub.crt, hub.key, gemeenten/<GM>.crt.
    Gemeente side (`gemeente_dir`): <GM>.key and <GM>.crt, plus ca.crt and hub.crt to verify
    that the hub signed; in real life each gemeente keeps its own key and the hub never sees it.
    """
    hub_dir, gemeente_dir = Path(hub_dir), Path(gemeente_dir)
    ca_key = _new_key()
    ca = _issue("cri-overlap demo CA", ca_key, None, None, ca=True, sign=True)
    _write_key(ca_key, hub_dir / "ca.key")
    _write_cert(ca, hub_dir / "ca.crt")
    _write_cert(ca, gemeente_dir / "ca.crt")
    hub_key = _new_key()
    _write_key(hub_key, hub_dir / "hub.key")
    hub_cert = _issue("cri-overlap hub", hub_key, ca, ca_key, ca=False, sign=True)
    _write_cert(hub_cert, hub_dir / "hub.crt")
    _write_cert(hub_cert, gemeente_dir / "hub.crt")  # a gemeente pins the hub's signatures
    for done, code in enumerate(gemeenten, start=1):
        key = _new_key()
        cert = _issue(f"{code} signals", key, ca, ca_key, ca=False, sign=True, encrypt=True)
        _write_cert(cert, hub_dir / "gemeenten" / f"{code}.crt")
        _write_cert(cert, gemeente_dir / f"{code}.crt")
        _write_key(key, gemeente_dir / f"{code}.key")
        if on_progress:
            on_progress(done)


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise CmsError(f"{path}: not a readable PEM certificate ({type(exc).__name__})") from None


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CmsError(f"{path}: not a readable PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CmsError(f"{path}: an RSA private key is needed")
    return key


def sign_and_encrypt(
    data: bytes,
    signer_cert: x509.Certificate,
    signer_key: rsa.RSAPrivateKey,
    recipient_cert: x509.Certificate,
) -> bytes:
    """EnvelopedData(SignedData(data)) in DER, binary content (no MIME canonicalisation)."""
    signed = sign(data, signer_cert, signer_key)
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(signed)
        .add_recipient(recipient_cert)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def sign(data: bytes, signer_cert: x509.Certificate, signer_key: rsa.RSAPrivateKey) -> bytes:
    """SignedData(data) in DER, content attached, binary (no MIME canonicalisation): what
    `openssl cms -verify -binary -inform DER` checks. Signs the signal file's manifest, so that
    gemeente, date, row count and sha256 cannot be relabelled."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(data)
        .add_signer(signer_cert, signer_key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def decrypt(message: bytes, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bytes:
    """The SignedData inside a message for this recipient."""
    try:
        return pkcs7.pkcs7_decrypt_der(message, cert, key, [])
    except ValueError:
        raise CmsError(
            "cannot decrypt: this message was not encrypted to this certificate and key"
        ) from None


def verify_with_openssl(signed_der: bytes, ca_file: Path, signer: Path | None = None) -> bytes:
    """Verify the signature against the CA with `openssl cms -verify`; return the content.

    With `signer` (a certificate file, e.g. the hub's) the signature must be made by exactly
    that certificate (`-certfile signer -nointern`): any other certificate the same CA issued,
    say a gemeente's, cannot pass off a file as the hub's."""
    pin = ["-certfile", str(signer), "-nointern"] if signer else []
    return _openssl_verify(signed_der, ["-CAfile", str(ca_file), *pin], signer)


def verify_signed_by(signed_der: bytes, signer_cert: Path) -> bytes:
    """Verify CMS SignedData (DER, content attached) made by exactly `signer_cert`; return the
    content.

    The hub pins each gemeente's own certificate and need not hold the CA that issued it, so the
    pinned certificate is both the only candidate signer (`-certfile signer_cert -nointern`: a
    certificate carried inside the message is never used) and the trust anchor (`-CAfile
    signer_cert -partial_chain`). Unlike `-noverify`, this still checks the certificate's
    validity dates and that its key usage allows signing S/MIME. A message signed by any other
    certificate, even one of the same CA, a tampered message and a file that is not SignedData
    are refused with a one-line `CmsError`."""
    load_certificate(signer_cert)  # a missing or unreadable pin is named as such, not as openssl's
    pin = str(signer_cert)
    return _openssl_verify(
        signed_der,
        ["-CAfile", pin, "-partial_chain", "-certfile", pin, "-nointern"],
        Path(signer_cert),
    )


def _openssl_verify(signed_der: bytes, trust: list[str], signer: Path | None) -> bytes:
    """Run `openssl cms -verify -binary -inform DER` with the `trust` arguments (CA file, pinned
    signer) on a temporary copy of the message; the content, or a one-line `CmsError`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CmsError("the openssl command is needed to verify the signature; install openssl")
    with tempfile.TemporaryDirectory(prefix="cri-cms-") as tmp:
        signed_path = Path(tmp) / "signed.der"
        content_path = Path(tmp) / "content"
        signed_path.write_bytes(signed_der)
        result = subprocess.run(  # noqa: S603 - fixed arguments, our own temporary files
            [
                openssl,
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                str(signed_path),
                *trust,
                "-out",
                str(content_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise CmsError(_verify_failure(result.stderr, signer))
        return content_path.read_bytes()


def _verify_failure(stderr: str, signer: Path | None) -> str:
    """One line from openssl's output: its first line, plus the reason of its last error line
    (`...:error:<code>:<library>:<function>:<reason>:<file>:<line>:<detail>`), which says what
    actually failed, e.g. `signer certificate not found` for a message someone else signed."""
    lines = stderr.strip().splitlines() or ["no detail"]
    reason = ""
    for line in reversed(lines):
        parts = line.split(":")
        if len(parts) >= 6 and parts[1] == "error":
            detail = ":".join(parts[8:]).strip()
            reason = parts[5] + (f": {detail}" if detail else "")
            break
    if signer is not None and reason == "signer certificate not found":
        reason = f"not signed with {signer.name}: {reason}"
    message = f"signature verification failed: {lines[0]}" + (f" ({reason})" if reason else "")
    return message[:300]
