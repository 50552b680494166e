"""Keys: settings first, then the keys file, then generated and saved (mode 0600)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
import yaml

from orchestrator.security import KeyConfigError, Keys, load_or_create_keys, new_key
from orchestrator.security import keys as keys_module
from orchestrator.settings import SecuritySettings

KEY_A = base64.urlsafe_b64encode(bytes(range(32))).decode()
KEY_B = base64.urlsafe_b64encode(bytes(range(32, 64))).decode()


def test_generated_keys_are_saved_private_and_reused(tmp_path: Path) -> None:
    """With nothing set, keys are generated into a new folder with mode 0600 and read back next start."""
    path = tmp_path / "var" / "keys.yaml"
    first = load_or_create_keys(SecuritySettings(keys_file=path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.active_data_key == "k1" and len(first.active_key) == 32 and len(first.code_key) == 32
    content = path.read_text()
    again = load_or_create_keys(SecuritySettings(keys_file=path))
    assert again == first
    assert path.read_text() == content


def test_settings_win_over_file_and_file_is_left_alone(tmp_path: Path) -> None:
    """Keys set in settings are used even when the file holds others; nothing missing, nothing written."""
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump({"data_keys": {"k1": KEY_A}, "active_data_key": "k1", "code_key": KEY_A}))
    before = path.read_text()
    keys = load_or_create_keys(
        SecuritySettings(keys_file=path, data_keys={"k9": KEY_B}, active_data_key="k9", code_key=KEY_B)
    )
    assert dict(keys.data_keys) == {"k9": bytes(range(32, 64))}
    assert keys.code_key == bytes(range(32, 64))
    assert path.read_text() == before


def test_only_missing_keys_are_generated_and_merged(tmp_path: Path) -> None:
    """A file with data keys but no code key gains a code key; its data keys stay as they were."""
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump({"data_keys": {"old": KEY_A, "new": KEY_B}, "active_data_key": "new"}))
    keys = load_or_create_keys(SecuritySettings(keys_file=path))
    saved = yaml.safe_load(path.read_text())
    assert saved["data_keys"] == {"old": KEY_A, "new": KEY_B} and saved["active_data_key"] == "new"
    assert base64.urlsafe_b64decode(saved["code_key"]) == keys.code_key
    assert keys.active_data_key == "new" and set(keys.data_keys) == {"old", "new"}


def test_padding_is_optional() -> None:
    """A key without its trailing ``=`` decodes the same."""
    keys = Keys({"k1": base64.urlsafe_b64decode(KEY_A)}, "k1", base64.urlsafe_b64decode(KEY_A))
    settings = SecuritySettings(data_keys={"k1": KEY_A.rstrip("=")}, code_key=KEY_A.rstrip("="))
    assert load_or_create_keys(settings) == keys


@pytest.mark.parametrize(
    ("code_key", "message"),
    [
        (base64.urlsafe_b64encode(b"short").decode(), "security.code_key must decode to 32 bytes, got 5"),
        ("not base64 at all!", "security.code_key is not url-safe base64"),
        (base64.b64encode(b"\xfb" * 32).decode(), "security.code_key is not url-safe base64"),
    ],
)
def test_malformed_key_is_a_clear_error_without_the_value(
    tmp_path: Path, code_key: str, message: str
) -> None:
    """A malformed key names the setting, says what is wrong and never echoes the key."""
    with pytest.raises(KeyConfigError, match=message) as info:
        load_or_create_keys(SecuritySettings(keys_file=tmp_path / "k.yaml", code_key=code_key))
    assert code_key not in str(info.value)
    assert not (tmp_path / "k.yaml").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("data_keys: [unclosed", "is not valid YAML"),
        ("- a\n- b\n", "must hold a mapping"),
        ("data_keys: {k1: 5}\n", "data_keys must map key ids to key strings"),
        ("code_key: 7\n", "code_key must be a string"),
        (f"data_keys: {{a: {KEY_A}, b: {KEY_B}}}\n", "set security.active_data_key"),
        (f"data_keys: {{a: {KEY_A}}}\nactive_data_key: z\n", "active_data_key 'z' is not a data key id"),
        (f"data_keys: {{'a b': {KEY_A}}}\n", "must be 1-64 printable characters"),
    ],
)
def test_unusable_keys_file(tmp_path: Path, content: str, message: str) -> None:
    """A keys file that cannot be used says why."""
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(KeyConfigError, match=message):
        load_or_create_keys(SecuritySettings(keys_file=path))


def test_unwritable_keys_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the keys file cannot be written, the error names it and no temporary file is left behind."""

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("orchestrator.security.keys.os.link", refuse)
    path = tmp_path / "keys.yaml"
    with pytest.raises(KeyConfigError, match=f"cannot write keys file {path}: Permission denied"):
        load_or_create_keys(SecuritySettings(keys_file=path))
    assert list(tmp_path.iterdir()) == []


def test_second_process_uses_the_first_ones_generated_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the keys file appears between reading and writing (another process starting), its keys win."""
    path = tmp_path / "keys.yaml"
    winner = load_or_create_keys(SecuritySettings(keys_file=path))
    content = path.read_text()
    real_read = keys_module._read_keys_file
    calls: list[Path] = []

    def read_as_if_missing_once(p: Path) -> dict[str, object] | None:
        calls.append(p)
        return None if len(calls) == 1 else real_read(p)

    monkeypatch.setattr(keys_module, "_read_keys_file", read_as_if_missing_once)
    assert load_or_create_keys(SecuritySettings(keys_file=path)) == winner
    assert len(calls) == 2 and path.read_text() == content
    assert [p.name for p in tmp_path.iterdir()] == ["keys.yaml"]


def test_repr_and_subkeys_keep_secrets() -> None:
    """``repr`` shows key ids only; subkeys differ per purpose and do not equal the code key."""
    keys = Keys({"k1": b"\x01" * 32}, "k1", b"\x02" * 32)
    assert "\\x01" not in repr(keys) and "\\x02" not in repr(keys) and "k1" in repr(keys)
    assert keys.subkey("csrf") != keys.subkey("phone-lookup")
    assert keys.subkey("csrf") == Keys({"x": b"\x09" * 32}, "x", b"\x02" * 32).subkey("csrf")
    assert keys.code_key not in (keys.subkey("csrf"), keys.subkey("phone-lookup"))
    with pytest.raises(ValueError, match="non-empty purpose"):
        keys.subkey("")


def test_new_keys_are_random_32_bytes() -> None:
    """``new_key`` gives 32 bytes of url-safe base64, different every time."""
    a, b = new_key(), new_key()
    assert a != b and len(base64.urlsafe_b64decode(a)) == 32
