"""Key files: round trip, 0600, no overwrite, clear refusals, the secret never printed."""

import base64
import json
import stat

import pytest

from privacy.keys import KeyFileError, load_key_file, new_key, write_key_file


def test_round_trip_and_mode(tmp_path):
    key = new_key("linkage")
    path = write_key_file(key, tmp_path / "k.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key_file(path, "linkage")
    assert loaded == key
    document = json.loads(path.read_text())
    assert set(document) == {"key_id", "purpose", "created", "secret"}
    assert len(base64.b64decode(document["secret"])) == 32


def test_secret_not_in_repr():
    key = new_key("hub")
    assert base64.b64encode(key.secret).decode() not in repr(key)
    assert "secret" not in repr(key)


def test_refuses_to_overwrite(tmp_path):
    path = write_key_file(new_key("hub"), tmp_path / "k.json")
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(new_key("hub"), path)


def test_wrong_purpose_is_refused(tmp_path):
    path = write_key_file(new_key("hub"), tmp_path / "hub.json")
    with pytest.raises(KeyFileError, match="'hub' but 'linkage' is needed"):
        load_key_file(path, "linkage")


def test_missing_file_names_the_remedy(tmp_path):
    with pytest.raises(KeyFileError, match="keys new --purpose hub"):
        load_key_file(tmp_path / "nope.json", "hub")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a readable JSON key file"),
        ("[]", "must be a JSON object"),
        ('{"key_id": "k", "purpose": "hub", "created": "2026-11-01"}', "lacks secret"),
        (
            '{"key_id": "k", "purpose": "hub", "created": "2026-11-01", "secret": "%%%"}',
            "not valid base64",
        ),
        (
            '{"key_id": "k", "purpose": "hub", "created": "2026-11-01", "secret": "AAAA"}',
            "must be 32 bytes",
        ),
        (
            '{"key_id": "k", "purpose": "hub", "created": "yesterday", "secret": "AAAA"}',
            "created must be a date",
        ),
        ('{"key_id": "", "purpose": "hub", "created": "2026-11-01", "secret": "AAAA"}', "key_id"),
    ],
)
def test_malformed_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        load_key_file(path, "hub")


def test_unknown_purpose():
    with pytest.raises(KeyFileError, match="unknown key purpose"):
        new_key("analytics")


def test_key_ids_differ():
    assert new_key("linkage").key_id != new_key("linkage").key_id
