"""Key files: round trip, 0600, no overwrite, clear refusals, the secret never printed."""

import base64
import json
import os
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
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message):
        load_key_file(path, "hub")


def test_unknown_purpose():
    with pytest.raises(KeyFileError, match="unknown key purpose"):
        new_key("analytics")


def test_key_ids_differ():
    assert new_key("linkage").key_id != new_key("linkage").key_id


def test_mode_0600_is_accepted(tmp_path):
    path = write_key_file(new_key("hub"), tmp_path / "k.json")
    path.chmod(0o600)
    assert load_key_file(path, "hub").purpose == "hub"


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660, 0o606, 0o620, 0o602, 0o610])
def test_key_file_open_to_group_or_others_is_refused(tmp_path, mode):
    key = new_key("hub")
    path = write_key_file(key, tmp_path / "k.json")
    path.chmod(mode)
    with pytest.raises(KeyFileError) as refused:
        load_key_file(path, "hub")
    message = str(refused.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert f"chmod 600 {path}" in message
    secret_b64 = base64.b64encode(key.secret).decode()
    assert secret_b64 not in message and key.secret.hex() not in message
    assert key.key_id not in message  # refused before the file is read at all


def test_mode_is_checked_before_the_content(tmp_path):
    """A world-readable file is refused as such, whatever it holds (even no valid JSON)."""
    path = tmp_path / "bad.json"
    path.write_text("not json")
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="mode is 0644"):
        load_key_file(path, "hub")


def test_symlink_to_a_private_key_file_is_followed(tmp_path):
    """Like ssh: only the mode of the file itself counts, not the link's."""
    target = write_key_file(new_key("linkage"), tmp_path / "real.json")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert load_key_file(link, "linkage").key_id == load_key_file(target, "linkage").key_id
    target.chmod(0o644)
    with pytest.raises(KeyFileError, match="mode is 0644"):
        load_key_file(link, "linkage")


def test_mode_is_taken_from_the_opened_file(tmp_path, monkeypatch):
    """The check uses fstat on the descriptor that is read, not a second lookup by name."""
    path = write_key_file(new_key("hub"), tmp_path / "k.json")
    calls = []
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: calls.append(fd) or real_fstat(fd))
    monkeypatch.setattr(os, "stat", lambda *a, **k: pytest.fail("os.stat by name"))
    load_key_file(path, "hub")
    assert calls


def test_a_directory_in_place_of_the_key_file_is_refused(tmp_path):
    folder = tmp_path / "k.json"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key_file(folder, "hub")


def test_a_fifo_in_place_of_the_key_file_does_not_hang(tmp_path):
    fifo = tmp_path / "k.json"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key_file(fifo, "hub")
