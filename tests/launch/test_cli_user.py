"""``robopost user`` and ``robopost serve`` options: operators are created, listed and re-passworded."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from launch.cli import _settings, app

runner = CliRunner()


def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "robopost.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": {"url": f"sqlite:///{tmp_path / 'db.sqlite'}"},
                "security": {"keys_file": str(tmp_path / "keys.yaml")},
            }
        ),
        encoding="utf-8",
    )
    return path


def test_users_are_added_listed_and_repassworded(tmp_path: Path) -> None:
    config = str(settings_file(tmp_path))
    added = runner.invoke(
        app, ["user", "add", "ana", "--role", "operator", "--config", config, "--password", "s3cret-pw"]
    )
    assert added.exit_code == 0, added.output
    assert "user ana (operator) created" in added.output
    again = runner.invoke(app, ["user", "add", "ana", "--config", config, "--password", "s3cret-pw"])
    assert again.exit_code != 0 and "ana" in again.output
    short = runner.invoke(app, ["user", "add", "bo", "--config", config, "--password", "short"])
    assert short.exit_code != 0
    listed = runner.invoke(app, ["user", "list", "--config", config])
    assert listed.output.split() == ["ana", "operator", "enabled"]
    changed = runner.invoke(app, ["user", "passwd", "ana", "--config", config, "--password", "another-pw"])
    assert changed.exit_code == 0 and "password of ana set" in changed.output
    missing = runner.invoke(app, ["user", "passwd", "nobody", "--config", config, "--password", "another-pw"])
    assert missing.exit_code != 0


def test_serve_options_override_the_settings_file(tmp_path: Path) -> None:
    settings = _settings(
        settings_file(tmp_path), http__host="0.0.0.0", http__port=9001, database__url="sqlite:///x.db"
    )
    assert (settings.http.host, settings.http.port, settings.database.url) == (
        "0.0.0.0",
        9001,
        "sqlite:///x.db",
    )
    assert settings.security.keys_file == tmp_path / "keys.yaml"
