"""The gemeente side of feedback (interfaces.md section 6): `cri-overlap feedback` checks a
feedback CSV, maps DDAS Vroegsignalering labels to our codes and signs it with the gemeente's own
certificate; the hub's `verify_signed_by` and stock `openssl cms -verify` accept exactly that and
nothing else. Real certificates (`create_demo_certificates`), real `openssl`.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from pipelines.feedback_file import (
    DDAS_RESULT_LABELS,
    DDAS_RESULT_STATUS_LABELS,
    DDAS_STATUS_IMPLIED_RESULTS,
    DDAS_STATUS_LABELS,
    FEEDBACK_COLUMNS,
    FEEDBACK_NAME_PATTERN,
    RESULTS,
    STATUSES,
    FeedbackFileError,
    feedback_file_name,
    normalise_feedback,
    sign_feedback,
)
from privacy.cms import (
    CmsError,
    create_demo_certificates,
    load_certificate,
    load_private_key,
    sign,
    verify_signed_by,
)

GM, OTHER = "GM0363", "GM0599"
TODAY = dt.date(2026, 12, 3)
CLI = Path(sys.executable).with_name("cri-overlap")
ROOT = Path(__file__).resolve().parents[1]
HEADER = "signal_id;status_date;status;result"
SIG1, SIG2, SIG3 = (f"SIG-20261122-{n:016x}" for n in (0xA1, 0xB2, 0xC3))

# The value lists of DDAS v1.2 (VNG-Realisatie/ddas-vroegsignalering,
# v1.2/json_schema_Uitwisselmodel.json, $defs EnumSignaalstatus and EnumEindresultaat): each
# must have a decision here, so a label the model adds is noticed when this list is updated.
DDAS_V12_STATUS = (
    "Inwoner al bekend bij schuldhulpverlening",
    "Inwoner is overleden",
    "Niet opgepakt: andere reden",
    "Niet opgepakt: herhaalde melding",
    "Niet opgepakt: onterecht signaal",
    "Nog niet opgepakt",
    "Opgepakt",
    "Persoon is geen inwoner (meer) in de gemeente",
)
DDAS_V12_RESULT = (
    "(Budget)advies en/of quick fix",
    "Definitief geen contact kunnen krijgen",
    "Geen reactie na eerder contact",
    "Inwoner al bekend bij schuldhulpverlening",
    "Inwoner heeft al een ander lopend traject",
    "Inwoner heeft zelf al betaald/betalingsregeling getroffen",
    "Inwoner is overleden",
    "Inwoner regelt het zelf/hoeft geen hulp vanuit vroegsignalering",
    "Niet opgepakt: andere reden",
    "Niet opgepakt: herhaalde melding",
    "Niet opgepakt: onterecht signaal",
    "Persoon is geen inwoner (meer) in de gemeente",
    "Vervolghulp en/of verwijzing",
    "Vervolghulp en/of verwijzing financieel",
    "Vervolghulp en/of verwijzing niet financieel",
    "Verwijzing zonder tussenkomst inwoner",
)


@dataclass(frozen=True)
class Pki:
    """Hub side (`hub/`: ca, hub, gemeenten/<GM>.crt) and gemeente side (`side/`: keys)."""

    hub: Path
    side: Path

    def key(self, gemeente: str = GM) -> Path:
        return self.side / f"{gemeente}.key"

    def cert(self, gemeente: str = GM) -> Path:
        return self.side / f"{gemeente}.crt"

    def pinned(self, gemeente: str = GM) -> Path:
        """The certificate the hub checks a gemeente's feedback against."""
        return self.hub / "gemeenten" / f"{gemeente}.crt"


@pytest.fixture(scope="module", autouse=True)
def _openssl_present() -> None:
    assert shutil.which("openssl"), "openssl is required for these tests (.ci/run installs it)"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    create_demo_certificates(root / "hub", root / "side", [GM, OTHER])
    return Pki(root / "hub", root / "side")


def csv_file(folder: Path, *rows: str, header: str = HEADER, prefix: str = "") -> Path:
    """A feedback CSV as a gemeente's software might write it: CRLF line ends."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feedback.csv"
    path.write_bytes((prefix + "\r\n".join((header, *rows)) + "\r\n").encode("utf-8"))
    return path


def openssl_verify(signed: Path, *trust: str) -> subprocess.CompletedProcess:
    """Stock `openssl cms -verify` as the spec writes it; the content on stdout."""
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signed), *trust],
        capture_output=True,
        timeout=60,
        check=False,
    )


def cli(pki: Pki, source: Path, gemeente: str = GM, cert_of: str = GM, *extra: str):
    return subprocess.run(
        [
            str(CLI),
            "feedback",
            "--gemeente",
            gemeente,
            "--in",
            str(source),
            "--key",
            str(pki.key(cert_of)),
            "--cert",
            str(pki.cert(cert_of)),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- signing: codes and DDAS labels ----------------------------------------------------------


def test_a_file_with_codes_is_signed_as_its_normalised_csv(pki, tmp_path):
    source = csv_file(
        tmp_path / "gm",
        f"{SIG1};2026-12-01;picked_up;quick_fix",
        f'"{SIG2}";2026-12-02;"not_resident";',
        f"{SIG3};2026-12-02;open;",
        prefix="\ufeff",
    )
    target = sign_feedback(GM, source, pki.key(), pki.cert(), today=TODAY)
    assert target == source.with_name("feedback-2026-12-03.csv.p7s")
    assert FEEDBACK_NAME_PATTERN.fullmatch(target.name)["date"] == "2026-12-03"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    expected = (
        f"{HEADER}\n{SIG1};2026-12-01;picked_up;quick_fix\n"
        f"{SIG2};2026-12-02;not_resident;\n{SIG3};2026-12-02;open;\n"
    )
    assert normalise_feedback(source.read_text("utf-8"), "x") == expected
    assert verify_signed_by(target.read_bytes(), pki.pinned()) == expected.encode()
    # the spec's stock command (against the CA) and the hub's pin, with openssl alone
    pin = str(pki.pinned())
    for trust in (
        ["-CAfile", str(pki.hub / "ca.crt")],
        ["-CAfile", pin, "-partial_chain", "-certfile", pin, "-nointern"],
    ):
        verified = openssl_verify(target, *trust)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout == expected.encode()


def test_the_cli_maps_ddas_labels_to_codes_and_signs(pki, tmp_path):
    rows = [
        f"{SIG1};2026-12-01;  opgepakt ;VERVOLGHULP EN/OF VERWIJZING NIET FINANCIEEL",
        f"{SIG2};2026-12-01;Inwoner is overleden;Inwoner is overleden",
        f"{SIG3};2026-12-02;Inwoner al bekend bij schuldhulpverlening;",
        f'{SIG1};2026-12-03;"Niet opgepakt: onterecht signaal";',
        f"{SIG2};2026-12-04;Opgepakt; (Budget)advies en/of quick fix ",
        f"{SIG3};2026-12-05;Opgepakt;Verwijzing zonder toestemming",  # a DDAS v1.0 label
        ";;;",  # a blank row as spreadsheets write them
    ]
    source = csv_file(tmp_path / "gm", *rows)
    target = tmp_path / "out" / feedback_file_name(TODAY)
    result = cli(pki, source, GM, GM, "--out", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"signed: 6 feedback rows for {GM} -> {target}"
    assert SIG1 not in result.stdout + result.stderr  # never row contents
    expected = (
        f"{HEADER}\n"
        f"{SIG1};2026-12-01;picked_up;follow_up_help\n"
        f"{SIG2};2026-12-01;deceased;\n"
        f"{SIG3};2026-12-02;picked_up;already_known_debt_help\n"
        f"{SIG1};2026-12-03;not_picked_up_unjustified;\n"
        f"{SIG2};2026-12-04;picked_up;quick_fix\n"
        f"{SIG3};2026-12-05;picked_up;referred_without_contact\n"
    )
    assert verify_signed_by(target.read_bytes(), pki.pinned()) == expected.encode()
    verified = openssl_verify(target, "-CAfile", str(pki.hub / "ca.crt"))
    assert verified.returncode == 0 and verified.stdout == expected.encode()


def test_every_code_has_a_ddas_label_and_every_ddas_label_a_decision():
    assert set(DDAS_STATUS_LABELS.values()) == set(STATUSES)
    assert set(DDAS_RESULT_LABELS.values()) == set(RESULTS)
    assert set(DDAS_RESULT_STATUS_LABELS.values()) <= set(STATUSES)
    assert set(DDAS_STATUS_IMPLIED_RESULTS.values()) <= set(RESULTS)
    assert set(DDAS_V12_STATUS) <= set(DDAS_STATUS_LABELS)
    assert set(DDAS_V12_RESULT) <= set(DDAS_RESULT_LABELS) | set(DDAS_RESULT_STATUS_LABELS)
    assert FEEDBACK_COLUMNS == ("signal_id", "status_date", "status", "result")


def test_the_mapping_tables_in_the_docs_are_the_ones_in_the_code():
    text = (ROOT / "docs" / "feedback.md").read_text("utf-8")
    tables = {}
    for column in ("status", "result"):
        section = text.split(f"### In the `{column}` column", 1)[1].split("\n### ", 1)[0]
        tables[column] = dict(re.findall(r"^\| `([^`]+)` \| `([a-z_]+)` \|", section, re.M))
    assert tables["status"] == DDAS_STATUS_LABELS
    assert tables["result"] == DDAS_RESULT_LABELS
    assert "v1.2/json_schema_Uitwisselmodel.json" in text


@pytest.mark.parametrize(("label", "code"), sorted(DDAS_STATUS_LABELS.items()))
def test_each_status_label_maps_ignoring_case_and_surrounding_space(label, code):
    result = "already_known_debt_help" if label in DDAS_STATUS_IMPLIED_RESULTS else ""
    text = f"{HEADER}\n{SIG1};2026-12-01; {label.upper()}\t;\n"
    assert normalise_feedback(text, "f.csv") == f"{HEADER}\n{SIG1};2026-12-01;{code};{result}\n"


@pytest.mark.parametrize(("label", "code"), sorted(DDAS_RESULT_LABELS.items()))
def test_each_result_label_maps_ignoring_case_and_surrounding_space(label, code):
    text = f"{HEADER}\n{SIG1};2026-12-01;picked_up;  {label.lower()} \n"
    assert normalise_feedback(text, "f.csv") == f"{HEADER}\n{SIG1};2026-12-01;picked_up;{code}\n"


def test_labels_match_exactly_apart_from_case_and_surrounding_space():
    for status in ("Nog  niet opgepakt", "Niet opgepakt:onterecht signaal", "Opgepakt."):
        with pytest.raises(FeedbackFileError, match=r"line 2: status .* DDAS"):
            normalise_feedback(f"{HEADER}\n{SIG1};2026-12-01;{status};\n", "f.csv")


# --- refusals: one line, naming the file and the line, exit 1, nothing written ---------------

REFUSALS = {
    "bad header": (["signal;status_date;status;result", f"{SIG1};2026-12-01;open;"], "line 1"),
    "extra column": ([f"{HEADER};note", f"{SIG1};2026-12-01;open;;x"], "line 1"),
    "missing column": (["signal_id;status_date;status", f"{SIG1};2026-12-01;open"], "line 1"),
    "comma separated": (["signal_id,status_date,status,result"], "line 1"),
    "unknown status": ([HEADER, f"{SIG1};2026-12-01;open;", f"{SIG2};2026-12-01;done;"], "line 3"),
    "unknown label": ([HEADER, f"{SIG1};2026-12-01;Niet opgepakt: geen capaciteit;"], "line 2"),
    "unknown result": ([HEADER, f"{SIG1};2026-12-01;picked_up;Voorzien van informatie"], "line 2"),
    "result without picked_up": ([HEADER, f"{SIG1};2026-12-01;open;quick_fix"], "line 2"),
    "status label as result": (
        [HEADER, f"{SIG1};2026-12-01;Opgepakt;Inwoner is overleden"],
        "line 2",
    ),
    "contradicting result": (
        [HEADER, f"{SIG1};2026-12-01;Inwoner al bekend bij schuldhulpverlening;quick_fix"],
        "line 2",
    ),
    "bad date": ([HEADER, f"{SIG1};2026-02-30;open;"], "line 2"),
    "date format": ([HEADER, f"{SIG1};01-12-2026;open;"], "line 2"),
    "date out of range": ([HEADER, f"{SIG1};2019-12-31;open;"], "line 2"),
    "bad signal id": ([HEADER, f"{SIG1.upper()};2026-12-01;open;"], "line 2"),
    "empty signal id": ([HEADER, ";2026-12-01;open;"], "line 2"),
    "field count": ([HEADER, f"{SIG1};2026-12-01;open"], "line 2"),
    "twice the same date": (
        [HEADER, f"{SIG1};2026-12-01;open;", f"{SIG1};2026-12-01;picked_up;"],
        "line 3",
    ),
    "bad quoting": ([HEADER, f'{SIG1};2026-12-01;"open"x;'], "line 2"),
    "header only": ([HEADER], "no feedback rows"),
    "empty file": ([], "empty"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_the_cli_refuses_a_bad_file_in_one_line(pki, tmp_path, case):
    lines, where = REFUSALS[case]
    folder = tmp_path / "gm"
    folder.mkdir()
    source = folder / "feedback.csv"
    source.write_bytes(("\r\n".join(lines) + ("\r\n" if lines else "")).encode("utf-8"))
    result = cli(pki, source)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr and not result.stdout
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"error: {source}: "), errors
    assert where in errors[0]
    assert SIG1 not in errors[0] and "2026-12-01" not in errors[0]  # no row contents
    assert sorted(p.name for p in folder.iterdir()) == ["feedback.csv"]  # nothing written


def test_a_file_that_is_not_utf8_is_refused_with_its_line(pki, tmp_path):
    source = tmp_path / "feedback.csv"
    source.write_bytes(
        f"{HEADER}\n{SIG1};2026-12-01;open;\n{SIG2};2026-12-01;ü;\n".encode("cp1252")
    )
    with pytest.raises(FeedbackFileError, match=r"feedback\.csv: line 3: not UTF-8"):
        sign_feedback(GM, source, pki.key(), pki.cert(), today=TODAY)


@pytest.mark.parametrize(
    ("gemeente", "cert_of", "message"),
    [
        (GM, OTHER, f"{OTHER}.crt: this is {OTHER}'s certificate, not {GM}'s"),
        (OTHER, GM, f"{GM}.crt: this is {GM}'s certificate, not {OTHER}'s"),
        ("0363", GM, "--gemeente '0363': not a gemeente code"),
        ("GM036", GM, "not a gemeente code"),
    ],
)
def test_the_cli_refuses_another_gemeentes_certificate_or_a_bad_code(
    pki, tmp_path, gemeente, cert_of, message
):
    source = csv_file(tmp_path / "gm", f"{SIG1};2026-12-01;open;")
    result = cli(pki, source, gemeente, cert_of)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and message in errors[0], errors
    assert sorted(p.name for p in source.parent.iterdir()) == ["feedback.csv"]


def test_a_key_that_is_not_the_certificates_is_refused(pki, tmp_path):
    source = csv_file(tmp_path, f"{SIG1};2026-12-01;open;")
    with pytest.raises(FeedbackFileError, match="does not belong to"):
        sign_feedback(GM, source, pki.key(OTHER), pki.cert(GM), today=TODAY)


def test_a_certificate_named_by_its_common_name_is_recognised(pki, tmp_path):
    cert = tmp_path / "mine.crt"  # no GM code in the file name: the CN "GM0363 signals" tells
    shutil.copy(pki.cert(GM), cert)
    source = csv_file(tmp_path / "gm", f"{SIG1};2026-12-01;open;")
    assert sign_feedback(GM, source, pki.key(GM), cert, today=TODAY).is_file()
    with pytest.raises(FeedbackFileError, match=f"this is {GM}'s certificate, not {OTHER}'s"):
        sign_feedback(OTHER, source, pki.key(GM), cert, today=TODAY)


def test_a_certificate_that_may_not_sign_is_refused_here_and_at_the_hub(pki, tmp_path):
    """A gemeente certificate as `certs demo` issued them before feedback (encryption only):
    openssl at the hub refuses its signature, so signing refuses it first, with the remedy."""
    from privacy.cms import _issue, _new_key, _write_cert, _write_key

    key = _new_key()
    ca = load_certificate(pki.hub / "ca.crt")
    ca_key = load_private_key(pki.hub / "ca.key")
    old = _issue(f"{GM} signals", key, ca, ca_key, ca=False, sign=False, encrypt=True)
    _write_cert(old, tmp_path / "old" / f"{GM}.crt")
    _write_key(key, tmp_path / "old" / f"{GM}.key")
    source = csv_file(tmp_path / "gm", f"{SIG1};2026-12-01;open;")
    with pytest.raises(FeedbackFileError, match="key usage does not allow signing"):
        sign_feedback(GM, source, tmp_path / "old" / f"{GM}.key", tmp_path / "old" / f"{GM}.crt")
    signed = sign(b"x", old, key)
    with pytest.raises(CmsError, match="unsuitable certificate purpose"):
        verify_signed_by(signed, tmp_path / "old" / f"{GM}.crt")


# --- the hub's check: exactly the gemeente's own certificate --------------------------------


@pytest.fixture(scope="module")
def signed_by_gm(pki) -> bytes:
    content = f"{HEADER}\n{SIG1};2026-12-01;picked_up;no_contact\n".encode()
    return sign(content, load_certificate(pki.cert()), load_private_key(pki.key()))


def test_verify_signed_by_returns_the_content(pki, signed_by_gm):
    assert verify_signed_by(signed_by_gm, pki.pinned()).startswith(HEADER.encode())


def test_verify_signed_by_refuses_another_gemeentes_signature(pki, signed_by_gm):
    content = verify_signed_by(signed_by_gm, pki.pinned())
    other = sign(content, load_certificate(pki.cert(OTHER)), load_private_key(pki.key(OTHER)))
    with pytest.raises(CmsError, match=f"not signed with {GM}.crt") as refused:
        verify_signed_by(other, pki.pinned(GM))
    assert "\n" not in str(refused.value)
    hub = sign(
        content, load_certificate(pki.hub / "hub.crt"), load_private_key(pki.hub / "hub.key")
    )
    with pytest.raises(CmsError, match="not signed with"):
        verify_signed_by(hub, pki.pinned(GM))


def test_verify_signed_by_refuses_a_same_named_certificate_of_another_ca(
    pki, signed_by_gm, tmp_path
):
    create_demo_certificates(tmp_path / "hub", tmp_path / "side", [GM])
    with pytest.raises(CmsError, match="signature verification failed"):
        verify_signed_by(signed_by_gm, tmp_path / "hub" / "gemeenten" / f"{GM}.crt")


def test_verify_signed_by_refuses_a_tampered_byte(pki, signed_by_gm):
    at = signed_by_gm.index(b"no_contact")
    tampered = bytearray(signed_by_gm)
    tampered[at] ^= 0x01
    with pytest.raises(CmsError, match="signature verification failed") as refused:
        verify_signed_by(bytes(tampered), pki.pinned())
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "garbage", [b"", b"not a cms message", b"signal_id;status_date;status;result\n", b"\x30\x80"]
)
def test_verify_signed_by_refuses_what_is_not_signed(pki, garbage):
    with pytest.raises(CmsError, match="signature verification failed") as refused:
        verify_signed_by(garbage, pki.pinned())
    assert "\n" not in str(refused.value)


def test_verify_signed_by_names_a_missing_pin(tmp_path, signed_by_gm):
    with pytest.raises(CmsError, match="not a readable PEM certificate"):
        verify_signed_by(signed_by_gm, tmp_path / "gemeenten" / f"{GM}.crt")


def test_demo_gemeente_certificates_sign_and_encrypt_while_hub_and_ca_keep_their_usage(pki):
    def usage(path: Path) -> x509.KeyUsage:
        return load_certificate(path).extensions.get_extension_for_class(x509.KeyUsage).value

    gemeente, hub, ca = usage(pki.cert()), usage(pki.hub / "hub.crt"), usage(pki.hub / "ca.crt")
    assert gemeente.digital_signature and gemeente.key_encipherment and gemeente.data_encipherment
    assert hub.digital_signature and hub.content_commitment and not hub.key_encipherment
    assert ca.key_cert_sign and ca.crl_sign and not ca.digital_signature
